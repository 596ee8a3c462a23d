// What the standard OpenTelemetry variables ask of the daemon. Nothing is exported unless they
// say so: `OTEL_TRACES_EXPORTER=otlp` / `OTEL_METRICS_EXPORTER=otlp`, or, with those unset, an
// OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the signal's own `..._TRACES_ENDPOINT`,
// `..._METRICS_ENDPOINT`). `none` or `OTEL_SDK_DISABLED=true` turns a signal off. The OTLP
// exporters read the endpoint, headers, timeout and compression from the same variables
// themselves; they send OTLP/HTTP with JSON bodies.

export interface OtelEnv {
  traces: boolean;
  metrics: boolean;
  /** How often metrics are pushed, ms (OTEL_METRIC_EXPORT_INTERVAL; 60 s by default). */
  metricInterval: number;
  /** How long one push may take, ms (OTEL_METRIC_EXPORT_TIMEOUT; 30 s by default). */
  metricTimeout: number;
  /** The service's name (OTEL_SERVICE_NAME; `cnmd` by default). */
  serviceName: string;
  /** What was asked and cannot be done, one sentence each (logged as warnings). */
  problems: string[];
}

function wants(env: NodeJS.ProcessEnv, signal: 'TRACES' | 'METRICS', problems: string[]): boolean {
  const list = env[`OTEL_${signal}_EXPORTER`]?.trim();
  if (!list) return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]);
  const names = list.split(',').map((s) => s.trim().toLowerCase());
  for (const n of names) {
    // `prometheus` for metrics is the pull exporter: --metrics-addr serves it.
    if (n !== 'otlp' && n !== 'none' && !(signal === 'METRICS' && n === 'prometheus')) {
      problems.push(`OTEL_${signal}_EXPORTER=${n} is not supported (otlp or none)`);
    }
  }
  return names.includes('otlp') && !names.includes('none');
}

function ms(env: NodeJS.ProcessEnv, key: string, fallback: number, problems: string[]): number {
  const v = env[key];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    problems.push(`${key}=${v} is not a positive number of milliseconds; using ${fallback}`);
    return fallback;
  }
  return n;
}

export function otelEnv(env: NodeJS.ProcessEnv): OtelEnv {
  const problems: string[] = [];
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
  const traces = !disabled && wants(env, 'TRACES', problems);
  const metrics = !disabled && wants(env, 'METRICS', problems);
  for (const key of [
    'OTEL_EXPORTER_OTLP_PROTOCOL',
    'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
  ]) {
    const p = env[key];
    if (p && p !== 'http/json' && (traces || metrics)) problems.push(`${key}=${p}: cnmd sends http/json`);
  }
  const metricInterval = ms(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, problems);
  // The SDK refuses an export timeout longer than the interval.
  const metricTimeout = Math.min(ms(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 30_000, problems), metricInterval);
  return {
    traces,
    metrics,
    metricInterval,
    metricTimeout,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || 'cnmd',
    problems,
  };
}
