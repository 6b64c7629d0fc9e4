// Read-your-writes for one client of the generated TypeScript SDK (hand-written;
// `make sdk` copies it beside runtime.ts). When the service reads from replicas,
// the answer to each write carries X-Commit-Position; a read sending it back sees
// that write. This middleware keeps the newest position a Configuration's calls
// were answered and sends it with every later call made with that Configuration:
//
//   const position = new CommitPosition();
//   const config = new Configuration({ basePath, headers, middleware: [position] });
import type { FetchParams, Middleware, RequestContext, ResponseContext } from "./runtime";

export const COMMIT_POSITION = "X-Commit-Position";

function order(position: string): bigint {
  const [high, low] = position.split("/");
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low ?? "0"}`);
}

export class CommitPosition implements Middleware {
  position: string | undefined = undefined;

  async pre(context: RequestContext): Promise<FetchParams> {
    const headers = { ...((context.init.headers as Record<string, string>) ?? {}) };
    if (this.position && !(COMMIT_POSITION in headers)) {
      headers[COMMIT_POSITION] = this.position;
    }
    return { url: context.url, init: { ...context.init, headers } };
  }

  async post(context: ResponseContext): Promise<Response> {
    const value = context.response.headers.get(COMMIT_POSITION);
    if (value && (this.position === undefined || order(value) > order(this.position))) {
      this.position = value;
    }
    return context.response;
  }
}
