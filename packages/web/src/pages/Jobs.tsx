import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router-dom';
import { ago, api, formatDuration, type JobList } from '../api';
import { Card, Empty, Failure, Loading, StatusBadge, useTitle } from '../ui';
import { RunBox } from './RunBox';

const STATUSES = ['', 'pending', 'running', 'sleeping', 'completed', 'error'] as const;
const PAGE_SIZE = 25;

export function JobsPage() {
  useTitle('Jobs');
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get('page')) || 1);
  const status = params.get('status') ?? '';
  const q = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  if (status) q.set('status', status);
  const jobs = useQuery({
    queryKey: ['jobs', page, status],
    queryFn: () => api<JobList>('GET', `/api/v1/mags-jobs?${q}`),
    placeholderData: keepPreviousData,
    // Live status: pending and running jobs change, so the list is re-read while the page is open.
    refetchInterval: 3000,
  });
  const pages = jobs.data ? Math.max(1, Math.ceil(jobs.data.total / PAGE_SIZE)) : 1;
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    if (k !== 'page') next.delete('page');
    setParams(next);
  };

  return (
    <>
      <h1>Jobs</h1>
      <p className="sub">Scripts you ran in sandboxes, newest first.</p>
      <RunBox />
      <Card
        title="Recent jobs"
        actions={
          <label className="inline">
            Status
            <select value={status} onChange={(e) => set('status', e.target.value)}>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s || 'all'}
                </option>
              ))}
            </select>
          </label>
        }
      >
        {jobs.isPending ? (
          <Loading what="jobs" />
        ) : jobs.error ? (
          <Failure feature="Jobs" error={jobs.error} retry={() => jobs.refetch()} />
        ) : jobs.data.jobs.length === 0 ? (
          <Empty>{status ? `No ${status} jobs.` : 'No jobs yet. Run a script above, or from a terminal: mags run \'echo hello\''}</Empty>
        ) : (
          <>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Job</th>
                    <th>Status</th>
                    <th className="hide-sm">Workspace</th>
                    <th className="hide-sm">Exit</th>
                    <th className="hide-sm">Duration</th>
                    <th>Created</th>
                  </tr>
                </thead>
                <tbody>
                  {jobs.data.jobs.map((j) => (
                    <tr key={j.request_id}>
                      <td>
                        <Link to={`/jobs/${encodeURIComponent(j.request_id)}`}>{j.name || j.request_id.slice(0, 8)}</Link>
                      </td>
                      <td>
                        <StatusBadge status={j.status} />
                      </td>
                      <td className="hide-sm">{j.workspace_id ?? '-'}</td>
                      <td className="hide-sm num">{j.exit_code ?? '-'}</td>
                      <td className="hide-sm num">{formatDuration(j.script_duration_ms)}</td>
                      <td title={j.created_at}>{ago(j.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <nav className="pager" aria-label="Pages">
              <span>
                {jobs.data.total} jobs · page {page} of {pages}
              </span>
              <button disabled={page <= 1} onClick={() => set('page', String(page - 1))}>
                Previous
              </button>
              <button disabled={page >= pages} onClick={() => set('page', String(page + 1))}>
                Next
              </button>
            </nav>
          </>
        )}
      </Card>
    </>
  );
}
