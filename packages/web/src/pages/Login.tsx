import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { api, type Session } from '../api';
import { ErrorBox, useTitle } from '../ui';

/** Where to go after signing in: only paths of this site, never another origin. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/jobs';
}

export function LoginPage() {
  useTitle('Sign in');
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      const identity = String(f.get('identity') ?? '').trim();
      const body = mode === 'token' ? { token: String(f.get('token') ?? '').trim() } : { [identity.includes('@') ? 'email' : 'username']: identity, password: String(f.get('password') ?? '') };
      const s = await api<Session>('POST', '/api/v1/auth/login', body);
      qc.setQueryData(['session'], s);
      navigate(safeNext(params.get('next')), { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="center">
      <main className="card login">
        <div className="brand" style={{ padding: '0 0 12px' }}>
          <img src="/favicon.svg" alt="" /> Mags
        </div>
        <h1>Sign in</h1>
        <p className="sub">to your self-hosted Mags server</p>
        <div className="tabs" role="group" aria-label="Sign-in method">
          <button type="button" aria-pressed={mode === 'password'} onClick={() => setMode('password')}>Password</button>
          <button type="button" aria-pressed={mode === 'token'} onClick={() => setMode('token')}>API token</button>
        </div>
        <form onSubmit={submit}>
          {mode === 'password' ? (
            <>
              <label>
                Username or email
                <input name="identity" autoComplete="username" required autoFocus />
              </label>
              <label>
                Password
                <input name="password" type="password" autoComplete="current-password" required />
              </label>
            </>
          ) : (
            <label>
              API token
              <input name="token" className="mono" placeholder="mags_…" autoComplete="off" required autoFocus />
            </label>
          )}
          {error !== null && <ErrorBox error={error} />}
          <button className="primary" type="submit" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        <p className="sub" style={{ marginTop: 16, fontSize: 13 }}>
          First time? The admin token is in <code>$MAGS_DATA_DIR/admin-token</code> on the server. Sign in with it, then
          invite users from Admin. <a href="/docs">Read the docs</a>.
        </p>
      </main>
    </div>
  );
}
