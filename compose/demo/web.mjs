// The demo's web service: every answer names the replica (its hostname), so a client can see the
// load balancer spread requests over the replicas.
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const name = hostname();
createServer((_req, res) => res.end(`${name}\n`)).listen(Number(process.env.PORT ?? 80));
