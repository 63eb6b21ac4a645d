import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ago, api, type CreatedToken, type TokenInfo } from '../api';
import { Card, ConfirmButton, DataTable, ErrorBox, QueryView, useTitle } from '../ui';

export function TokensPage() {
  useTitle('API tokens');
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ['tokens'], queryFn: () => api<{ tokens: TokenInfo[] }>('GET', '/api/v1/tokens') });
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const create = useMutation({
    mutationFn: (name: string) => api<CreatedToken>('POST', '/api/v1/tokens', name ? { name } : {}),
    onSuccess: (t) => {
      setCreated(t);
      void qc.invalidateQueries({ queryKey: ['tokens'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['tokens'] }),
  });

  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    create.mutate(String(new FormData(e.currentTarget).get('name') ?? '').trim());
    e.currentTarget.reset();
  }

  return (
    <>
      <h1>API tokens</h1>
      <p className="sub">Tokens let the CLI, the SDKs and scripts act as you. Treat them like passwords.</p>
      <Card title="Create a token">
        <form className="row" onSubmit={submit}>
          <label style={{ flex: 1, minWidth: 200 }}>
            Name
            <input name="name" placeholder="laptop, ci, agent…" maxLength={128} />
          </label>
          <button className="primary" type="submit" disabled={create.isPending} style={{ alignSelf: 'flex-end' }}>
            Create token
          </button>
        </form>
        {create.error && <ErrorBox error={create.error} />}
        {created && (
          <div style={{ marginTop: 14 }} role="status">
            <p style={{ margin: '0 0 6px' }}>
              <strong>Copy the token now: it is shown only once.</strong>
            </p>
            <div className="secret mono" data-testid="new-token">{created.token}</div>
            <div className="row" style={{ marginTop: 8 }}>
              <button onClick={() => void navigator.clipboard?.writeText(created.token)}>Copy</button>
              <button onClick={() => setCreated(null)}>Done</button>
            </div>
            <p className="sub" style={{ marginTop: 8 }}>
              Use it with <code>mags login</code> (paste it when asked), or <code>export MAGS_API_TOKEN=…</code>.
            </p>
          </div>
        )}
      </Card>
      <Card title="Your tokens">
        {revoke.error && <ErrorBox error={revoke.error} />}
        <QueryView query={list} what="tokens" feature="Tokens" retry isEmpty={(d) => d.tokens.length === 0} empty="No tokens. Create one above to use the CLI or an SDK.">
          {(data) => (
            <DataTable columns={['Name', 'Created', 'Last used']} actions>
              {data.tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td title={t.created_at}>{ago(t.created_at)}</td>
                  <td title={t.last_used_at ?? ''}>{t.last_used_at ? ago(t.last_used_at) : 'never'}</td>
                  <td>
                    <ConfirmButton
                      className="danger"
                      aria-label={`Revoke token ${t.name}`}
                      question={`Revoke token "${t.name}"? Programs using it stop working at once.`}
                      onConfirm={() => revoke.mutate(t.id)}
                    >
                      Revoke
                    </ConfirmButton>
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
