import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { components } from '../../../sdk/src/api/schema.gen';
import { ago, api, formatBytes, type Workspace } from '../api';
import { Card, Empty, ErrorBox, Failure, Loading, useTitle } from '../ui';

type History = components['schemas']['WorkspaceHistory'];

export function WorkspacesPage() {
  useTitle('Workspaces');
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ['workspaces'], queryFn: () => api<{ workspaces: Workspace[] }>('GET', '/api/v1/workspaces') });
  const [open, setOpen] = useState<string | null>(null);
  const del = useMutation({
    mutationFn: (id: string) => api('DELETE', `/api/v1/workspaces/${encodeURIComponent(id)}`),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['workspaces'] }),
  });

  return (
    <>
      <h1>Workspaces</h1>
      <p className="sub">A workspace keeps /root (and what scripts install) between jobs that name it.</p>
      <Card title="Your workspaces">
        {del.error && <ErrorBox error={del.error} />}
        {list.isPending ? (
          <Loading what="workspaces" />
        ) : list.error ? (
          <Failure feature="Workspaces" error={list.error} retry={() => list.refetch()} />
        ) : list.data.workspaces.length === 0 ? (
          <Empty>No workspaces yet. Run a job with a workspace name (Jobs, or mags run -w NAME '...') to create one.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Size</th>
                  <th className="hide-sm">Last sync</th>
                  <th className="hide-sm">Last used</th>
                  <th className="hide-sm">Versions</th>
                  <th><span className="hide-sm">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {list.data.workspaces.map((w) => (
                  <tr key={w.workspace_id}>
                    <td>
                      {w.name}
                      {w.in_use && <span className="badge s-running" style={{ marginLeft: 6 }}>in use</span>}
                    </td>
                    <td className="num">{formatBytes(w.size_bytes)} <span className="sub">of {w.disk_gb} GB</span></td>
                    <td className="hide-sm" title={w.last_sync_at ?? ''}>{w.last_sync_at ? ago(w.last_sync_at) : 'never'}</td>
                    <td className="hide-sm" title={w.last_used_at ?? ''}>{ago(w.last_used_at)}</td>
                    <td className="hide-sm num">{w.versions ?? 'this host only'}</td>
                    <td>
                      <div className="row">
                        <button onClick={() => setOpen(open === w.workspace_id ? null : w.workspace_id)} aria-expanded={open === w.workspace_id}>
                          History
                        </button>
                        <button
                          className="danger"
                          disabled={w.in_use || del.isPending}
                          title={w.in_use ? 'Stop the job using it first' : undefined}
                          onClick={() => {
                            if (confirm(`Delete workspace "${w.name}" and all its stored versions? This cannot be undone.`)) del.mutate(w.workspace_id);
                          }}
                        >
                          Delete
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      {open && <HistoryCard id={open} />}
    </>
  );
}

function HistoryCard({ id }: { id: string }) {
  const h = useQuery({ queryKey: ['workspace-history', id], queryFn: () => api<History>('GET', `/api/v1/workspaces/${encodeURIComponent(id)}/history`) });
  return (
    <Card title={`History of ${id}`}>
      {h.isPending ? (
        <Loading what="versions" />
      ) : h.error ? (
        <Failure feature="Workspace history" error={h.error} />
      ) : h.data.versions.length === 0 ? (
        <Empty>No stored versions: this server keeps workspaces on this host only, or no job has synced it yet.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Version</th>
                <th>Saved</th>
                <th>Files</th>
                <th>Size</th>
              </tr>
            </thead>
            <tbody>
              {h.data.versions.map((v) => (
                <tr key={v.version}>
                  <td className="mono">{v.version}</td>
                  <td title={v.created_at}>{ago(v.created_at)}</td>
                  <td className="num">{v.files}</td>
                  <td className="num">{formatBytes(v.bytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="sub" style={{ marginTop: 8 }}>Restore one with <code>mags workspace restore {id} VERSION</code>.</p>
    </Card>
  );
}
