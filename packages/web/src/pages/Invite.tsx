import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate, useParams } from 'react-router-dom';
import { api, type Session } from '../api';
import { ErrorBox, useTitle } from '../ui';

export function InvitePage() {
  useTitle('Accept invite');
  const { token = '' } = useParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const password = String(f.get('password') ?? '');
    if (password !== String(f.get('again') ?? '')) {
      setError(new Error('The two passwords differ; type the same password twice.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const s = await api<Session>('POST', '/api/v1/auth/accept-invite', { token, password });
      qc.setQueryData(['session'], s);
      navigate('/jobs', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="center">
      <main className="card login">
        <h1>Welcome to Mags</h1>
        <p className="sub">Choose a password (at least 8 characters) to finish setting up your account.</p>
        <form onSubmit={submit}>
          <label>
            Password
            <input name="password" type="password" autoComplete="new-password" minLength={8} required autoFocus />
          </label>
          <label>
            Password again
            <input name="again" type="password" autoComplete="new-password" minLength={8} required />
          </label>
          {error !== null && <ErrorBox error={error} />}
          <button className="primary" type="submit" disabled={busy}>
            {busy ? 'Saving…' : 'Set password and sign in'}
          </button>
        </form>
      </main>
    </div>
  );
}
