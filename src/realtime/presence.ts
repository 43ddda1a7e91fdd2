/** Who is online. The hub answers for its own node; the Redis presence answers for the cluster. */
export interface Presence {
  onlineUserIds(): Promise<number[]>;
  isOnline(userId: number): Promise<boolean>;
}
