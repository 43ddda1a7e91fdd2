/** The in-process bus of the embedded default: delivery is a function call on the next microtask. */
import type { Bus, BusHandler, BusMessage } from './bus.ts';

export function createMemoryBus(): Bus {
  const handlers = new Set<BusHandler>();
  return {
    async publish(msg: BusMessage) {
      // Deliver after the publisher's own continuation, as a network bus would.
      queueMicrotask(() => {
        for (const h of handlers) h(msg);
      });
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    onReconnect() {
      return () => {};
    },
    async close() {
      handlers.clear();
    },
  };
}
