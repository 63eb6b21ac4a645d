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
/** Seconds as s, min or h, whichever reads best. */
const span = (s: number) => (s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`);

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
          <div className="stats">
            <Stat label="Jobs" value={String(usage.data.totals.jobs)} />
            <Stat label="Sandbox time" value={span(usage.data.totals.wall_seconds)} />
            <Stat label="vCPU time" value={span(usage.data.totals.vcpu_seconds)} />
            <Stat label="Memory GiB·h" value={(usage.data.totals.memory_mb_seconds / 1024 / 3600).toFixed(3)} />
            <Stat label="Egress" value={formatBytes(usage.data.totals.egress_bytes)} />
            <Stat label="Stored" value={formatBytes(usage.data.totals.storage_bytes)} />
          </div>
          <Card title="Per day">
            {usage.data.rows.length === 0 ? <Empty>No usage in this period. Run a job and it shows here.</Empty> : <Chart rows={usage.data.rows} from={from} days={days} />}
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

function Chart({ rows, from, days }: { rows: UsageRow[]; from: Date; days: number }) {
  const el = useRef<HTMLDivElement>(null);
  const fromMs = from.getTime();
  useEffect(() => {
    const node = el.current!;
    // One point per day of the period (days without use are 0), in minutes when the use is small.
    const byDay = new Map(rows.map((r) => [r.key.slice(0, 10), r]));
    const xs: number[] = [];
    const wall: number[] = [];
    const vcpu: number[] = [];
    const maxWall = Math.max(...rows.map((r) => r.wall_seconds));
    const unit = maxWall < 5 * 3600 ? 60 : 3600;
    const unitName = unit === 60 ? 'minutes' : 'hours';
    for (let i = 0; i < days; i++) {
      const d = new Date(fromMs + i * DAY);
      const r = byDay.get(d.toISOString().slice(0, 10));
      xs.push(d.getTime() / 1000);
      wall.push((r?.wall_seconds ?? 0) / unit);
      vcpu.push((r?.vcpu_seconds ?? 0) / unit);
    }
    const color = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#4338ca';
    const bars = uPlot.paths.bars!({ size: [0.6, 40] });
    const plot = new uPlot(
      {
        width: node.clientWidth,
        height: 260,
        scales: { y: { range: (_u, _min, max) => [0, Math.max(max, 1) * 1.1] } },
        series: [
          {},
          { label: `Sandbox ${unitName}`, stroke: color, fill: `${color}55`, paths: bars, points: { show: false } },
          { label: `vCPU ${unitName}`, stroke: '#0e9384', width: 2, points: { show: false } },
        ],
        axes: [{ stroke: '#888' }, { stroke: '#888', values: (_u, ticks) => ticks.map((t) => String(+t.toFixed(2))) }],
      },
      [xs, wall, vcpu],
      node,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: node.clientWidth, height: 260 }));
    ro.observe(node);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [rows, fromMs, days]);
  return <div ref={el} className="chart" data-testid="usage-chart" role="img" aria-label="Sandbox and vCPU time per day" />;
}
