// Traces, only when the OTEL_* variables ask for them (otel-env.ts): a NodeTracerProvider whose
// batch processor sends OTLP/HTTP (JSON) to the collector the variables name. Registering it sets
// the AsyncLocalStorage context manager, so a step awaited inside an attach is that attach's child.
// Without it nothing here is loaded into the daemon's work: no tracer, no wrapper (instrument.ts).
import { context, type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export class Tracing {
  readonly #provider: NodeTracerProvider;
  readonly tracer: Tracer;

  constructor(resource: Resource) {
    // The processor reads OTEL_BSP_* (batch size, delay) and the exporter OTEL_EXPORTER_OTLP_*.
    this.#provider = new NodeTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    });
    this.#provider.register();
    this.tracer = this.#provider.getTracer('@cnmd/sidecar');
  }

  /** Sends what is buffered, then stops. */
  async close(): Promise<void> {
    await this.#provider.forceFlush().catch(() => {});
    await this.#provider.shutdown().catch(() => {});
    trace.disable();
    context.disable();
  }
}
