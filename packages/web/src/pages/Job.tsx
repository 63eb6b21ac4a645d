import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import type { components } from '../../../sdk/src/api/schema.gen';
import { ago, api, formatDuration, type LogEntry } from '../api';
import { Card, ErrorBox, Failure, Loading, StatusBadge, useTitle } from '../ui';
import { submitJob } from './RunBox';

type JobDetails = components['schemas']['JobDetails'];
const Terminal = lazy(() => import('./Terminal'));

/** Lines kept on screen; older ones scroll away so a chatty job stays responsive. */
const MAX_LINES = 5000;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007/g;

const LIVE = new Set(['pending', 'running']);

export function JobPage() {
  const { id = '' } = useParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const job = useQuery({
    queryKey: ['job', id],
    queryFn: () => api<JobDetails>('GET', `/api/v1/mags-jobs/${encodeURIComponent(id)}/details`),
    refetchInterval: (q) => (q.state.data && !LIVE.has(q.state.data.status) && q.state.data.status !== 'sleeping' ? false : 2000),
  });
  useTitle(job.data ? job.data.name || `Job ${job.data.request_id.slice(0, 8)}` : 'Job');
  const stop = useMutation({
    mutationFn: () => api('POST', `/api/v1/mags-jobs/${encodeURIComponent(id)}/stop`),
    onSettled: () => qc.invalidateQueries({ queryKey: ['job', id] }),
  });
  const rerun = useMutation({
    mutationFn: (j: JobDetails) =>
      submitJob({
        script: j.script,
        name: j.name ?? undefined,
        workspace_id: j.workspace_id ?? undefined,
        persistent: j.persistent || undefined,
        timeout_seconds: j.timeout_seconds ?? undefined,
        vcpus: j.vcpus,
        memory_mb: j.memory_mb,
        disk_gb: j.disk_gb,
      }),
    onSuccess: (newId) => navigate(`/jobs/${encodeURIComponent(newId)}`),
  });

  if (job.isPending) return <Loading what="the job" />;
  if (job.error) {
    return (
      <>
        <h1>Job</h1>
        <Failure feature="Job details" error={job.error} retry={() => job.refetch()} />
        <p><Link to="/jobs">Back to jobs</Link></p>
      </>
    );
  }
  const j = job.data;
  const ref = j.name || j.workspace_id || j.request_id;
  const running = j.status === 'running';
  return (
    <>
      <div className="spread">
        <div>
          <h1>
            {j.name || `Job ${j.request_id.slice(0, 8)}`} <StatusBadge status={j.status} />
          </h1>
          <p className="sub mono">{j.request_id}</p>
        </div>
        <div className="row">
          {(LIVE.has(j.status) || j.status === 'sleeping') && (
            <button className="danger" onClick={() => stop.mutate()} disabled={stop.isPending}>
              {stop.isPending ? 'Stopping…' : 'Stop'}
            </button>
          )}
          <button onClick={() => rerun.mutate(j)} disabled={rerun.isPending}>
            {rerun.isPending ? 'Starting…' : 'Run again'}
          </button>
        </div>
      </div>
      {stop.error && <ErrorBox error={stop.error} />}
      {rerun.error && <ErrorBox error={rerun.error} />}

      <Card title="Output">
        <Logs id={j.request_id} />
      </Card>

      {j.persistent && (running || j.status === 'sleeping') && (
        <Card title="Terminal">
          <Suspense fallback={<Loading what="the terminal" />}>
            <Terminal id={j.request_id} />
          </Suspense>
        </Card>
      )}

      <div className="grid2" style={{ alignItems: 'start' }}>
        <Card title="Details">
          <dl className="facts">
            <dt>Exit code</dt>
            <dd>{j.exit_code ?? '-'}{j.end_reason ? ` (${j.end_reason})` : ''}</dd>
            {j.error_message && (
              <>
                <dt>Error</dt>
                <dd>{j.error_message}</dd>
              </>
            )}
            <dt>Workspace</dt>
            <dd>{j.workspace_id ?? 'none (nothing is kept)'}</dd>
            {j.base_workspace_id && (
              <>
                <dt>Base workspace</dt>
                <dd>{j.base_workspace_id}</dd>
              </>
            )}
            <dt>Persistent</dt>
            <dd>{j.persistent ? (j.no_sleep ? 'yes, never sleeps' : 'yes') : 'no'}</dd>
            <dt>URL</dt>
            <dd>{j.url ? <a href={j.url} target="_blank" rel="noreferrer noopener">{j.url}</a> : '-'}</dd>
          </dl>
        </Card>
        <Card title="Limits and timings">
          <dl className="facts">
            <dt>vCPUs</dt>
            <dd>{j.vcpus}</dd>
            <dt>Memory</dt>
            <dd>{j.memory_mb} MiB</dd>
            <dt>Disk</dt>
            <dd>{j.disk_gb} GB</dd>
            <dt>Timeout</dt>
            <dd>{j.timeout_seconds ? `${j.timeout_seconds} s` : 'server default'}</dd>
            <dt>Created</dt>
            <dd title={j.created_at}>{ago(j.created_at)}</dd>
            <dt>Started</dt>
            <dd title={j.started_at ?? ''}>{ago(j.started_at)}</dd>
            <dt>Ended</dt>
            <dd title={j.completed_at ?? ''}>{ago(j.completed_at)}</dd>
            <dt>Script time</dt>
            <dd>{formatDuration(j.script_duration_ms)}</dd>
          </dl>
        </Card>
      </div>

      <Card title="Script">
        <pre className="block">{j.script}</pre>
        {j.environment_keys.length > 0 && <p className="sub" style={{ marginTop: 8 }}>Environment: {j.environment_keys.join(', ')}</p>}
      </Card>

      <Card title="Use it from a terminal">
        <pre className="block">{[
          `mags status ${ref}`,
          `mags logs -f ${ref}`,
          ...(j.persistent ? [`mags exec ${ref} 'uname -a'`, `mags ssh ${ref}`, `mags url ${ref} 8080`] : []),
          `mags stop ${ref}`,
        ].join('\n')}</pre>
      </Card>
    </>
  );
}

/** The job's output, streamed with Server-Sent Events until the job ends. Shown as text only. */
function Logs({ id }: { id: string }) {
  const [lines, setLines] = useState<LogEntry[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'ended' | 'lost'>('connecting');
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    setLines([]);
    setState('connecting');
    const es = new EventSource(`/api/v1/mags-jobs/${encodeURIComponent(id)}/logs?follow=1`);
    let pending: LogEntry[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const add = pending;
      pending = [];
      setLines((old) => {
        const next = old.concat(add);
        return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
      });
    };
    es.onopen = () => setState('live');
    es.addEventListener('log', (ev) => {
      pending.push(JSON.parse((ev as MessageEvent<string>).data) as LogEntry);
      if (!frame) frame = requestAnimationFrame(flush);
    });
    es.addEventListener('end', () => {
      es.close();
      if (frame) cancelAnimationFrame(frame);
      flush();
      setState('ended');
    });
    es.onerror = () => {
      // EventSource reconnects by itself (resuming after the last id) unless the server refused.
      if (es.readyState === EventSource.CLOSED) setState('lost');
    };
    return () => {
      es.close();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [id]);

  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  return (
    <>
      <p className="sub" role="status" aria-live="polite" style={{ margin: '0 0 8px' }}>
        {state === 'connecting' && 'Connecting to the output stream…'}
        {state === 'live' && 'Live: new output appears as the job writes it.'}
        {state === 'ended' && (lines.length === 0 ? 'The job wrote no output.' : 'The job has ended; this is all of its output.')}
        {state === 'lost' && 'The output stream was closed by the server; reload the page to reconnect.'}
      </p>
      <pre
        className="logs"
        ref={box}
        tabIndex={0}
        aria-label="Job output"
        data-testid="logs"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {lines.map((l) => (
          <span key={l.seq} className={l.stream}>
            {l.message.replace(ANSI, '')}
            {'\n'}
          </span>
        ))}
      </pre>
    </>
  );
}
