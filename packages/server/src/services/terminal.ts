import { randomBytes } from 'node:crypto';
import type { User } from './types.js';

/** Seconds a terminal ticket stays valid. */
export const TERMINAL_TICKET_SECONDS = 60;
/** Tickets kept at once; issuing more drops the oldest. */
const MAX_TICKETS = 10_000;

interface Ticket {
  user: User;
  jobId: string;
  expiresAt: number;
}

/**
 * Single-use, short-lived tickets for the web terminal WebSocket: a browser cannot send an
 * Authorization header on a WebSocket, and an API token in a URL ends up in logs and history.
 * Tickets live in this process's memory only (a restart invalidates them; they last a minute).
 */
export class TerminalTickets {
  private readonly tickets = new Map<string, Ticket>();

  constructor(private readonly ttlMs = TERMINAL_TICKET_SECONDS * 1000) {}

  issue(user: User, jobId: string): { ticket: string; expires_in: number } {
    this.sweep();
    while (this.tickets.size >= MAX_TICKETS) this.tickets.delete(this.tickets.keys().next().value as string);
    const ticket = `mtt_${randomBytes(24).toString('base64url')}`;
    this.tickets.set(ticket, { user, jobId, expiresAt: Date.now() + this.ttlMs });
    return { ticket, expires_in: Math.round(this.ttlMs / 1000) };
  }

  /** The ticket's user and job, once: a redeemed or expired ticket answers undefined. */
  redeem(ticket: string): { user: User; jobId: string } | undefined {
    const t = this.tickets.get(ticket);
    if (!t) return undefined;
    this.tickets.delete(ticket);
    if (t.expiresAt < Date.now()) return undefined;
    return { user: t.user, jobId: t.jobId };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, t] of this.tickets) if (t.expiresAt < now) this.tickets.delete(k);
  }
}
