import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who an admin action is done for (docs/access.md "Audit"). The API layer runs each authenticated
 * request's handler inside {@link runAsActor}; every audit entry the Broker writes meanwhile carries the
 * actor's credential id in `details.actor`, and the context is marked `audited`, so the API layer knows
 * the action is already in the log and writes an entry of its own only for actions the Broker did not
 * record. An AsyncLocalStorage rather than a parameter on every Broker method: routes added later (the CA
 * service, the dashboard) get the actor in their audit entries without threading it through.
 */
export interface ActorContext {
  /** The credential id (`bootstrap` for the admin token file, `local` for a data-directory admin). */
  readonly actor: string;
  /** Set when an audit entry named this actor. */
  audited: boolean;
}

const current = new AsyncLocalStorage<ActorContext>();

/** Runs `fn` with `ctx` as the actor of every audit entry written meanwhile. */
export function runAsActor<T>(ctx: ActorContext, fn: () => T): T {
  return current.run(ctx, fn);
}

/** The actor of the running admin action, if any. */
export function currentActor(): ActorContext | undefined {
  return current.getStore();
}
