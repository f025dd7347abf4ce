import { AsyncLocalStorage } from 'node:async_hooks';

/** What every event written while serving a request records about it: where it came from. */
export interface RequestContext {
  origin: string;
}

const store = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` (and everything it starts) as part of a request from `origin`. */
export const withRequest = <T>(ctx: RequestContext, fn: () => T): T => store.run(ctx, fn);

/** The request being served, if any. */
export const currentRequest = (): RequestContext | undefined => store.getStore();
