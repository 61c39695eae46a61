import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface RequestDrain {
  /**
   * Turns requests away from now on (503, connection closed) and waits until every request
   * already being served has been answered, or `graceMs` has passed; resolves to how many
   * were still unanswered. The caller closes the server after it.
   */
  drain(graceMs: number): Promise<number>;
}

/**
 * Tracks the requests `server` is serving, so that it can stop without cutting them short:
 * a handler keeps running after its connection is closed, and what it still does would
 * meet the services stopped after this one. Takes over the server's `request` listeners.
 */
export function drainableRequests(server: Server): RequestDrain {
  const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  // A request is answered once its response is all written out, or its handler has ended it
  // after the client had gone; closing its connection sooner would drop the answer.
  const serving = new Set<ServerResponse>();
  const prune = () => {
    for (const res of serving) if (res.writableFinished || (res.writableEnded && res.destroyed)) serving.delete(res);
  };
  let refusing = false;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (refusing) {
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' }).end('{"message":"Service Unavailable"}');
      return;
    }
    prune();
    serving.add(res);
    for (const handler of handlers) handler.call(server, req, res);
  });
  return {
    async drain(graceMs) {
      refusing = true;
      server.closeIdleConnections();
      const until = Date.now() + graceMs;
      for (prune(); serving.size > 0 && Date.now() < until; prune()) await new Promise((resolve) => setTimeout(resolve, 10));
      return serving.size;
    },
  };
}
