import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { components } from '../../../sdk/src/api/schema.gen';
import { ago, api, formatBytes, type Workspace } from '../api';
import { Card, ConfirmButton, DataTable, ErrorBox, HIDE_SM, QueryView, useTitle } from '../ui';

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
        <QueryView
          query={list}
          what="workspaces"
          feature="Workspaces"
          retry
          isEmpty={(d) => d.workspaces.length === 0}
          empty="No workspaces yet. Run a job with a workspace name (Jobs, or mags run -w NAME '...') to create one."
        >
          {(data) => (
            <DataTable columns={['Name', 'Size', HIDE_SM('Last sync'), HIDE_SM('Last used'), HIDE_SM('Versions')]} actions>
              {data.workspaces.map((w) => (
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
                      <ConfirmButton
                        className="danger"
                        disabled={w.in_use || del.isPending}
                        title={w.in_use ? 'Stop the job using it first' : undefined}
                        question={`Delete workspace "${w.name}" and all its stored versions? This cannot be undone.`}
                        onConfirm={() => del.mutate(w.workspace_id)}
                      >
                        Delete
                      </ConfirmButton>
                    </div>
                  </td>
                </tr>
              ))}
            </DataTable>
          )}
        </QueryView>
      </Card>
      {open && <HistoryCard id={open} />}
    </>
  );
}

function HistoryCard({ id }: { id: string }) {
  const h = useQuery({ queryKey: ['workspace-history', id], queryFn: () => api<History>('GET', `/api/v1/workspaces/${encodeURIComponent(id)}/history`) });
  return (
    <Card title={`History of ${id}`}>
      <QueryView
        query={h}
        what="versions"
        feature="Workspace history"
        isEmpty={(d) => d.versions.length === 0}
        empty="No stored versions: this server keeps workspaces on this host only, or no job has synced it yet."
      >
        {(data) => (
          <DataTable columns={['Version', 'Saved', 'Files', 'Size']}>
            {data.versions.map((v) => (
              <tr key={v.version}>
                <td className="mono">{v.version}</td>
                <td title={v.created_at}>{ago(v.created_at)}</td>
                <td className="num">{v.files}</td>
                <td className="num">{formatBytes(v.bytes)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </QueryView>
      <p className="sub" style={{ marginTop: 8 }}>Restore one with <code>mags workspace restore {id} VERSION</code>.</p>
    </Card>
  );
}
