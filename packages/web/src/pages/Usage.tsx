import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useSession } from '../App';
import { api, formatBytes } from '../api';
import { Card, Empty, Failure, Loading, useTitle } from '../ui';

interface UsageRow {
  key: string;
  jobs: number;
  wall_seconds: number;
  vcpu_seconds: number;
  memory_mb_seconds: number;
  egress_bytes: number;
  storage_bytes: number;
}
interface UsageAnswer {
  from: string;
  to: string;
  group_by: string;
  rows: UsageRow[];
  totals: Omit<UsageRow, 'key'>;
}

const DAY = 86_400_000;
const hours = (s: number) => (s / 3600).toFixed(2);

export function UsagePage() {
  useTitle('Usage');
  const session = useSession();
  const [days, setDays] = useState(30);
  const to = new Date(Math.ceil(Date.now() / DAY) * DAY);
  const from = new Date(to.getTime() - days * DAY);
  const usage = useQuery({
    queryKey: ['usage', days],
    queryFn: () => api<UsageAnswer>('GET', `/api/v1/usage?from=${from.toISOString()}&to=${to.toISOString()}&group_by=day`),
  });

  return (
    <>
      <div className="spread">
        <div>
          <h1>Usage</h1>
          <p className="sub">{session.user.admin ? 'What the jobs of all users used, per day (you are an admin).' : 'What your jobs used, per day.'}</p>
        </div>
        <label className="inline">
          Period
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={7}>7 days</option>
            <option value={30}>30 days</option>
            <option value={90}>90 days</option>
          </select>
        </label>
      </div>
      {usage.isPending ? (
        <Loading what="usage" />
      ) : usage.error ? (
        <Failure feature="Usage metering" error={usage.error} retry={() => usage.refetch()} />
      ) : (
        <>
          <div className="grid2">
            <Stat label="Jobs" value={String(usage.data.totals.jobs)} />
            <Stat label="Sandbox hours" value={hours(usage.data.totals.wall_seconds)} />
            <Stat label="vCPU hours" value={hours(usage.data.totals.vcpu_seconds)} />
            <Stat label="Memory GiB·h" value={(usage.data.totals.memory_mb_seconds / 1024 / 3600).toFixed(2)} />
            <Stat label="Egress" value={formatBytes(usage.data.totals.egress_bytes)} />
            <Stat label="Stored" value={formatBytes(usage.data.totals.storage_bytes)} />
          </div>
          <Card title="Daily sandbox and vCPU hours">
            {usage.data.rows.length === 0 ? <Empty>No usage in this period. Run a job and it shows here.</Empty> : <Chart rows={usage.data.rows} />}
          </Card>
        </>
      )}
    </>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div className="card" style={{ marginBottom: 0 }}>
      <div className="sub" style={{ margin: 0 }}>{label}</div>
      <div style={{ fontSize: 22, fontWeight: 700 }}>{value}</div>
    </div>
  );
}

function Chart({ rows }: { rows: UsageRow[] }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const node = el.current!;
    const xs = rows.map((r) => Date.parse(r.key) / 1000);
    const data: uPlot.AlignedData = [xs, rows.map((r) => r.wall_seconds / 3600), rows.map((r) => r.vcpu_seconds / 3600)];
    const color = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#4338ca';
    const plot = new uPlot(
      {
        width: node.clientWidth,
        height: 260,
        series: [
          {},
          { label: 'Sandbox hours', stroke: color, fill: `${color}22`, width: 2 },
          { label: 'vCPU hours', stroke: '#0e9384', width: 2 },
        ],
        axes: [{ stroke: '#888' }, { stroke: '#888' }],
      },
      data,
      node,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: node.clientWidth, height: 260 }));
    ro.observe(node);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [rows]);
  return <div ref={el} data-testid="usage-chart" role="img" aria-label="Daily sandbox hours and vCPU hours" />;
}
