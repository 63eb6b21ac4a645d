import type { UseQueryResult } from '@tanstack/react-query';
import { useEffect, type ButtonHTMLAttributes, type ReactNode } from 'react';
import { ApiError } from './api';

/** Sets the document title of a page. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Mags`;
  }, [title]);
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="empty" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** An error answer: its message and what to do next. */
export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  const e = error instanceof ApiError ? error : undefined;
  return (
    <div className="error" role="alert">
      <strong>{e ? e.message : String((error as Error)?.message ?? error)}</strong>
      {e?.hint && <div>{e.hint}</div>}
      {e && <div className="mono">code: {e.code}</div>}
      {retry && (
        <div style={{ marginTop: 8 }}>
          <button onClick={retry}>Try again</button>
        </div>
      )}
    </div>
  );
}

/** The honest answer when the server does not offer a feature (it said 501 or 404). */
export function Unavailable({ feature, error }: { feature: string; error: ApiError }) {
  return (
    <div className="notice" role="status">
      <strong>{feature} is not available on this server.</strong>
      <div>The server answered: {error.message}</div>
      <div>Ask the operator to upgrade the Mags server to a version with this feature.</div>
    </div>
  );
}

/** Renders `error` as Unavailable when the server lacks the feature, else as an error. */
export function Failure({ feature, error, retry }: { feature: string; error: unknown; retry?: () => void }) {
  if (error instanceof ApiError && error.unavailable) return <Unavailable feature={feature} error={error} />;
  return <ErrorBox error={error} retry={retry} />;
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge s-${status}`}>{status}</span>;
}

export function Card({ title, actions, children }: { title?: string; actions?: ReactNode; children: ReactNode }) {
  return (
    <section className="card" aria-label={title}>
      {(title || actions) && (
        <div className="spread" style={{ marginBottom: 12 }}>
          {title && <h2 style={{ margin: 0 }}>{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/**
 * What a query shows: its loading line, its failure (Unavailable when the server lacks `feature`;
 * with `retry` a "Try again" button), `empty` when `isEmpty(data)`, else `children(data)`.
 */
export function QueryView<T>({
  query,
  what,
  feature,
  retry,
  isEmpty,
  empty,
  children,
}: {
  query: UseQueryResult<T>;
  what: string;
  feature: string;
  retry?: boolean;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  if (query.isPending) return <Loading what={what} />;
  if (query.error) return <Failure feature={feature} error={query.error} retry={retry ? () => void query.refetch() : undefined} />;
  if (isEmpty?.(query.data)) return <Empty>{empty}</Empty>;
  return <>{children(query.data)}</>;
}

/** A column heading of a DataTable; `className` `hide-sm` hides the column on phones. */
export interface Column {
  label: string;
  className?: string;
}

/** A column hidden on phones. */
export const HIDE_SM = (label: string): Column => ({ label, className: 'hide-sm' });

/**
 * A table that scrolls sideways on narrow screens: a header row of `columns` (with `actions`, a
 * last "Actions" column whose heading shows on wide screens only), then `children`, the body rows.
 */
export function DataTable({ columns, actions, children }: { columns: Array<string | Column>; actions?: boolean; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            {columns.map((c) => {
              const col = typeof c === 'string' ? { label: c } : c;
              return (
                <th key={col.label} className={col.className}>
                  {col.label}
                </th>
              );
            })}
            {actions && (
              <th>
                <span className="hide-sm">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A button that asks `question` in the browser's confirm dialog and calls `onConfirm` only on yes. */
export function ConfirmButton({ question, onConfirm, ...button }: { question: string; onConfirm: () => void } & Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'onClick'>) {
  return (
    <button
      {...button}
      onClick={() => {
        if (confirm(question)) onConfirm();
      }}
    />
  );
}
