import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import type { components } from '../../../sdk/src/api/schema.gen';
import { useSession } from '../App';
import { ago, api, type PoolStatus } from '../api';
import { Card, DataTable, ErrorBox, HIDE_SM, Loading, QueryView, useTitle } from '../ui';

type User = components['schemas']['User'];
interface Invite {
  name: string;
  url: string;
  expires_at: string;
}

export function AdminPage() {
  useTitle('Admin');
  const session = useSession();
  const qc = useQueryClient();
  const users = useQuery({ queryKey: ['users'], queryFn: () => api<{ users: User[] }>('GET', '/api/v1/users'), enabled: session.user.admin });
  const pool = useQuery({ queryKey: ['pool'], queryFn: () => api<PoolStatus>('GET', '/api/v1/mags-jobs/pool-status'), refetchInterval: 5000 });
  const health = useQuery({ queryKey: ['health'], queryFn: () => api<{ status: string; version: string }>('GET', '/health'), refetchInterval: 10_000 });
  const [invite, setInvite] = useState<Invite | null>(null);

  const inviteUser = useMutation({
    mutationFn: async (u: { id: string; name: string }) => ({ name: u.name, ...(await api<{ url: string; expires_at: string }>('POST', `/api/v1/users/${encodeURIComponent(u.id)}/invite`)) }),
    onSuccess: setInvite,
  });
  const create = useMutation({
    mutationFn: async (b: { name: string; email?: string; admin: boolean }) => {
      const u = await api<{ id: string; name: string }>('POST', '/api/v1/users', { name: b.name, admin: b.admin });
      if (b.email) await api('PATCH', `/api/v1/users/${encodeURIComponent(u.id)}`, { email: b.email });
      return u;
    },
    onSuccess: (u) => {
      void qc.invalidateQueries({ queryKey: ['users'] });
      inviteUser.mutate(u);
    },
  });
  const setDisabled = useMutation({
    mutationFn: (b: { id: string; disabled: boolean }) => api('PATCH', `/api/v1/users/${encodeURIComponent(b.id)}`, { disabled: b.disabled }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['users'] }),
  });

  if (!session.user.admin) {
    return (
      <>
        <h1>Admin</h1>
        <p className="notice">Only admins can see this page. Ask an admin of this server for access.</p>
      </>
    );
  }

  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    create.mutate({ name: String(f.get('name') ?? '').trim(), email: String(f.get('email') ?? '').trim() || undefined, admin: f.get('admin') === 'on' });
    e.currentTarget.reset();
  }

  return (
    <>
      <h1>Admin</h1>
      <p className="sub">Users, the sandbox pool and the health of this server.</p>
      <div className="grid2" style={{ alignItems: 'start' }}>
        <Card title="Server">
          {health.isPending ? <Loading what="health" /> : health.error ? <ErrorBox error={health.error} /> : (
            <dl className="facts">
              <dt>Status</dt>
              <dd><span className="badge s-running">{health.data.status}</span></dd>
              <dt>Version</dt>
              <dd>{health.data.version}</dd>
            </dl>
          )}
        </Card>
        <Card title="Warm pool">
          <QueryView query={pool} what="the pool" feature="Pool status">
            {(p) => (
              <dl className="facts">
                <dt>Idle sandboxes</dt>
                <dd>{p.idle_vms}</dd>
                <dt>Busy</dt>
                <dd>{p.busy_vms}</dd>
                <dt>Total</dt>
                <dd>{p.total_vms}</dd>
                <dt>Min / max</dt>
                <dd>{p.min_pool_size} / {p.max_pool_size}</dd>
              </dl>
            )}
          </QueryView>
        </Card>
      </div>
      <Card title="Invite a user">
        <form className="row" onSubmit={submit}>
          <label>
            Username
            <input name="name" required maxLength={128} placeholder="ada" />
          </label>
          <label>
            Email (optional)
            <input name="email" type="email" maxLength={256} placeholder="ada@example.com" />
          </label>
          <label className="inline" style={{ alignSelf: 'flex-end', paddingBottom: 8 }}>
            <input name="admin" type="checkbox" /> Admin
          </label>
          <button className="primary" type="submit" disabled={create.isPending} style={{ alignSelf: 'flex-end' }}>
            Create and invite
          </button>
        </form>
        {create.error && <ErrorBox error={create.error} />}
        {inviteUser.error && <ErrorBox error={inviteUser.error} />}
        {invite && (
          <div style={{ marginTop: 14 }} role="status">
            <p style={{ margin: '0 0 6px' }}>
              Send this one-time link to <strong>{invite.name}</strong> (valid until {new Date(invite.expires_at).toLocaleString()}):
            </p>
            <div className="secret mono" data-testid="invite-url">{invite.url}</div>
          </div>
        )}
      </Card>
      <Card title="Users">
        {setDisabled.error && <ErrorBox error={setDisabled.error} />}
        <QueryView query={users} what="users" feature="Users" retry isEmpty={(d) => d.users.length === 0} empty="No users.">
          {(data) => (
            <DataTable columns={['User', HIDE_SM('Email'), HIDE_SM('Created'), 'State']} actions>
              {data.users.map((u) => (
                <tr key={u.id}>
                  <td>
                    {u.name} {u.admin && <span className="badge s-sleeping">admin</span>}
                  </td>
                  <td className="hide-sm">{u.email ?? '-'}</td>
                  <td className="hide-sm" title={u.created_at}>{ago(u.created_at)}</td>
                  <td>{u.disabled_at ? <span className="badge s-error">disabled</span> : <span className="badge s-running">active</span>}</td>
                  <td>
                    <div className="row">
                      <button onClick={() => inviteUser.mutate(u)} aria-label={`New invite link for ${u.name}`}>Invite link</button>
                      {u.id !== session.user.id && (
                        <button
                          className={u.disabled_at ? '' : 'danger'}
                          onClick={() => setDisabled.mutate({ id: u.id, disabled: !u.disabled_at })}
                          aria-label={`${u.disabled_at ? 'Enable' : 'Disable'} ${u.name}`}
                        >
                          {u.disabled_at ? 'Enable' : 'Disable'}
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </DataTable>
          )}
        </QueryView>
      </Card>
    </>
  );
}
