export type { ApplyResult, Backend, DataPlane, Proto, Scheduler, ServicePort, VirtualService } from './types.js';
