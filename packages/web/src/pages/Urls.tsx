import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { api, type JobList } from '../api';
import { Card, Empty, ErrorBox, Failure, Loading, useTitle } from '../ui';

/** One URL alias as the server lists it (`GET /api/v2/mags-url-aliases`). */
interface Alias {
  subdomain: string;
  workspace_id?: string | null;
  domain?: string | null;
  port?: number | null;
  url?: string | null;
}

function aliasesOf(data: unknown): Alias[] {
  if (Array.isArray(data)) return data as Alias[];
  const o = (data ?? {}) as Record<string, unknown>;
  const list = o.aliases ?? o.url_aliases ?? o.items;
  return Array.isArray(list) ? (list as Alias[]) : [];
}

export function UrlsPage() {
  useTitle('URLs');
  const qc = useQueryClient();
  const jobs = useQuery({ queryKey: ['jobs', 'running-urls'], queryFn: () => api<JobList>('GET', '/api/v1/mags-jobs?status=running&page_size=100'), refetchInterval: 5000 });
  const aliases = useQuery({ queryKey: ['aliases'], queryFn: async () => aliasesOf(await api<unknown>('GET', '/api/v2/mags-url-aliases')) });
  const create = useMutation({
    mutationFn: (b: { subdomain: string; workspace_id: string; port?: number }) => api('POST', '/api/v2/mags-url-aliases', b),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['aliases'] }),
  });
  const remove = useMutation({
    mutationFn: (sub: string) => api('DELETE', `/api/v2/mags-url-aliases/${encodeURIComponent(sub)}`),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['aliases'] }),
  });
  const withUrl = jobs.data?.jobs.filter((j) => j.url) ?? [];

  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const port = String(f.get('port') ?? '').trim();
    create.mutate({ subdomain: String(f.get('subdomain') ?? '').trim(), workspace_id: String(f.get('workspace') ?? '').trim(), ...(port ? { port: Number(port) } : {}) });
  }

  return (
    <>
      <h1>URLs</h1>
      <p className="sub">Public addresses of persistent jobs, and stable aliases that follow a workspace.</p>
      <Card title="Running jobs with a URL">
        {jobs.isPending ? (
          <Loading what="jobs" />
        ) : jobs.error ? (
          <Failure feature="Jobs" error={jobs.error} />
        ) : withUrl.length === 0 ? (
          <Empty>No running job has a URL. Run a persistent job, then open URL access with mags url NAME 8080.</Empty>
        ) : (
          <ul>
            {withUrl.map((j) => (
              <li key={j.request_id}>
                <Link to={`/jobs/${encodeURIComponent(j.request_id)}`}>{j.name || j.request_id.slice(0, 8)}</Link>:{' '}
                <a href={j.url!} target="_blank" rel="noreferrer noopener">{j.url}</a>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="URL aliases">
        {aliases.isPending ? (
          <Loading what="aliases" />
        ) : aliases.error ? (
          <Failure feature="URL aliases" error={aliases.error} retry={() => aliases.refetch()} />
        ) : (
          <>
            <form className="row" onSubmit={submit} style={{ marginBottom: 14 }}>
              <label>
                Subdomain
                <input name="subdomain" required pattern="[a-z0-9-]{1,63}" placeholder="my-app" />
              </label>
              <label>
                Workspace
                <input name="workspace" required placeholder="workspace name" />
              </label>
              <label>
                Port
                <input name="port" type="number" min={1} max={65535} placeholder="8080" />
              </label>
              <button className="primary" type="submit" disabled={create.isPending} style={{ alignSelf: 'flex-end' }}>
                Create alias
              </button>
            </form>
            {create.error && <ErrorBox error={create.error} />}
            {remove.error && <ErrorBox error={remove.error} />}
            {aliases.data.length === 0 ? (
              <Empty>No aliases yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th>Alias</th>
                      <th>Workspace</th>
                      <th className="hide-sm">Port</th>
                      <th><span className="hide-sm">Actions</span></th>
                    </tr>
                  </thead>
                  <tbody>
                    {aliases.data.map((a) => (
                      <tr key={a.subdomain}>
                        <td>{a.url ? <a href={a.url} target="_blank" rel="noreferrer noopener">{a.url}</a> : a.subdomain}</td>
                        <td>{a.workspace_id ?? '-'}</td>
                        <td className="hide-sm num">{a.port ?? 8080}</td>
                        <td>
                          <button className="danger" aria-label={`Remove alias ${a.subdomain}`} onClick={() => remove.mutate(a.subdomain)}>
                            Remove
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </>
        )}
      </Card>
    </>
  );
}
