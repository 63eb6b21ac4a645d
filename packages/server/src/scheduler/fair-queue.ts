/**
 * The queue of pending jobs: one FIFO per user, users taken in turn (round robin). A user whose
 * turn it is but who may not start a job now (at their running cap) keeps their place, so one
 * user's backlog delays another user's job by at most one free slot.
 */
export interface QueueEntry {
  id: string;
  userId: string;
}

export class FairQueue<T extends QueueEntry> {
  /** Insertion order is the turn order: a user who just got a slot goes to the back. */
  private readonly byUser = new Map<string, T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(entry: T): void {
    const q = this.byUser.get(entry.userId);
    if (q) q.push(entry);
    else this.byUser.set(entry.userId, [entry]);
    this.count++;
  }

  /** The next job of the first user in turn order for whom `eligible(userId)` holds; not removed. */
  peek(eligible: (userId: string) => boolean): T | undefined {
    for (const [userId, q] of this.byUser) if (eligible(userId)) return q[0];
    return undefined;
  }

  /** Removes the user's next job and moves the user to the back of the turn order. */
  shift(userId: string): T | undefined {
    const q = this.byUser.get(userId);
    const entry = q?.shift();
    if (!entry) return undefined;
    this.count--;
    this.byUser.delete(userId);
    if (q!.length > 0) this.byUser.set(userId, q!);
    return entry;
  }

  /** Removes a queued job by id; false when it is not queued. */
  remove(id: string): boolean {
    for (const [userId, q] of this.byUser) {
      const i = q.findIndex((e) => e.id === id);
      if (i < 0) continue;
      q.splice(i, 1);
      this.count--;
      if (q.length === 0) this.byUser.delete(userId);
      return true;
    }
    return false;
  }

  clear(): void {
    this.byUser.clear();
    this.count = 0;
  }
}
