// The SharedWorker script of the shared-connection test: what an application's worker holds.
import { serveSharedWorker } from "../../src/shared/worker.js";

serveSharedWorker();
