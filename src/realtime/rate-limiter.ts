/** Token bucket for inbound frames: `limit` frames per minute, bursts up to `limit`. */
export class RateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    private readonly limit: number,
    now: number,
  ) {
    this.tokens = limit;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.limit, this.tokens + ((now - this.last) * this.limit) / 60_000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
