/**
 * Who is online. The hub answers for its own node; the cluster presence (in Redis, or in PostgreSQL
 * when there is no Redis) answers for the cluster.
 */
export interface Presence {
  onlineUserIds(): Promise<number[]>;
  isOnline(userId: number): Promise<boolean>;
}

/** A cluster-wide presence: told of this node's changes by the hub, stopped when the node leaves. */
export interface ClusterPresence extends Presence {
  /** A user's first connection opened (`online`) or last one closed on this node. Never throws. */
  changed(userId: number, online: boolean): void;
  stop(): Promise<void>;
}
