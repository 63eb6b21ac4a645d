import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router-dom';
import { api } from '../api';
import { Card, ErrorBox } from '../ui';

export interface RunInput {
  script: string;
  name?: string;
  workspace_id?: string;
  persistent?: boolean;
  timeout_seconds?: number;
  vcpus?: number;
  memory_mb?: number;
  disk_gb?: number;
}

/** Submits a job through the v2 API (vcpus, memory) and returns its request id. */
export async function submitJob(input: RunInput): Promise<string> {
  const body: Record<string, unknown> = { type: 'inline', ...input };
  for (const k of Object.keys(body)) if (body[k] === undefined || body[k] === '') delete body[k];
  const res = await api<{ request_id: string }>('POST', '/api/v2/mags-jobs', body);
  return res.request_id;
}

function num(v: FormDataEntryValue | null): number | undefined {
  const s = String(v ?? '').trim();
  return s === '' ? undefined : Number(s);
}

/** The "Run" box: a script with its workspace, persistence and limits. */
export function RunBox() {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      const id = await submitJob({
        script: String(f.get('script') ?? ''),
        name: String(f.get('name') ?? '').trim() || undefined,
        workspace_id: String(f.get('workspace') ?? '').trim() || undefined,
        persistent: f.get('persistent') === 'on' || undefined,
        timeout_seconds: num(f.get('timeout')),
        vcpus: num(f.get('vcpus')),
        memory_mb: num(f.get('memory')),
        disk_gb: num(f.get('disk')),
      });
      await qc.invalidateQueries({ queryKey: ['jobs'] });
      navigate(`/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Run a script">
      <form onSubmit={submit} style={{ display: 'flex', flexDirection: 'column', gap: 12 }}>
        <label>
          Script (bash, runs in /root)
          <textarea name="script" required placeholder={"echo hello from $(hostname)\npython3 -c 'print(6*7)'"} />
        </label>
        <div className="grid2">
          <label>
            Name (optional)
            <input name="name" placeholder="my-job" maxLength={128} />
          </label>
          <label>
            Workspace (optional)
            <input name="workspace" placeholder="keeps /root between runs" maxLength={128} />
          </label>
          <label>
            Timeout (seconds)
            <input name="timeout" type="number" min={1} placeholder="server default" />
          </label>
          <label>
            vCPUs
            <input name="vcpus" type="number" min={1} placeholder="1" />
          </label>
          <label>
            Memory (MiB)
            <input name="memory" type="number" min={64} placeholder="1024" />
          </label>
          <label>
            Disk (GB)
            <input name="disk" type="number" min={1} placeholder="default" />
          </label>
        </div>
        <div className="spread">
          <label className="inline">
            <input name="persistent" type="checkbox" /> Persistent (stays up for URL, SSH, terminal)
          </label>
          <button className="primary" type="submit" disabled={busy}>
            {busy ? 'Starting…' : 'Run'}
          </button>
        </div>
        {error !== null && <ErrorBox error={error} />}
      </form>
    </Card>
  );
}
