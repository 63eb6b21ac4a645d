import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, lazy, Suspense, useContext, useEffect, type ReactNode } from 'react';
import { NavLink, Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { api, ApiError, onSignedOut, setCsrfToken, type Session } from './api';
import { JobsPage } from './pages/Jobs';
import { LoginPage } from './pages/Login';

// The jobs list and sign-in come with the first load; other pages load when first opened.
const AdminPage = lazy(() => import('./pages/Admin').then((m) => ({ default: m.AdminPage })));
const InvitePage = lazy(() => import('./pages/Invite').then((m) => ({ default: m.InvitePage })));
const JobPage = lazy(() => import('./pages/Job').then((m) => ({ default: m.JobPage })));
const TokensPage = lazy(() => import('./pages/Tokens').then((m) => ({ default: m.TokensPage })));
const UrlsPage = lazy(() => import('./pages/Urls').then((m) => ({ default: m.UrlsPage })));
const UsagePage = lazy(() => import('./pages/Usage').then((m) => ({ default: m.UsagePage })));
const WorkspacesPage = lazy(() => import('./pages/Workspaces').then((m) => ({ default: m.WorkspacesPage })));
import { ErrorBox, Loading } from './ui';

const SessionContext = createContext<Session | null>(null);

/** The signed-in session (user and CSRF token). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/invite/:token" element={<Suspense fallback={<div className="center"><Loading what="the page" /></div>}><InvitePage /></Suspense>} />
      <Route path="*" element={<SignedIn />} />
    </Routes>
  );
}

function SignedIn() {
  const location = useLocation();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const session = useQuery({ queryKey: ['session'], queryFn: () => api<Session>('GET', '/api/v1/auth/session'), staleTime: 60_000 });
  useEffect(() => onSignedOut(() => {
    qc.removeQueries({ queryKey: ['session'] });
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }), [qc, navigate, location]);
  if (session.isPending) return <div className="center"><Loading what="your session" /></div>;
  if (session.error) {
    if (session.error instanceof ApiError && session.error.status === 401) {
      return <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
    }
    return <div className="center"><ErrorBox error={session.error} retry={() => session.refetch()} /></div>;
  }
  setCsrfToken(session.data.csrf_token);
  return (
    <SessionContext.Provider value={session.data}>
      <Layout session={session.data}>
        <Routes>
          <Route path="/" element={<Navigate to="/jobs" replace />} />
          <Route path="/jobs" element={<JobsPage />} />
          <Route path="/jobs/:id" element={<JobPage />} />
          <Route path="/workspaces" element={<WorkspacesPage />} />
          <Route path="/urls" element={<UrlsPage />} />
          <Route path="/tokens" element={<TokensPage />} />
          <Route path="/usage" element={<UsagePage />} />
          <Route path="/admin" element={<AdminPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </Layout>
    </SessionContext.Provider>
  );
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p className="sub">There is no page at this address. Pick one from the menu.</p>
    </>
  );
}

function Layout({ session, children }: { session: Session; children: ReactNode }) {
  const navigate = useNavigate();
  const qc = useQueryClient();
  async function signOut() {
    try {
      await api('POST', '/api/v1/auth/logout');
    } finally {
      qc.clear();
      navigate('/login');
    }
  }
  const links: [string, string][] = [
    ['/jobs', 'Jobs'],
    ['/workspaces', 'Workspaces'],
    ['/urls', 'URLs'],
    ['/tokens', 'Tokens'],
    ['/usage', 'Usage'],
  ];
  if (session.user.admin) links.push(['/admin', 'Admin']);
  return (
    <div className="shell">
      <a className="skip" href="#content">Skip to content</a>
      <nav className="side" aria-label="Main">
        <a className="brand" href="/jobs">
          <img src="/favicon.svg" alt="" /> Mags
        </a>
        {links.map(([to, label]) => (
          <NavLink key={to} to={to} className="nav">
            {label}
          </NavLink>
        ))}
        <a className="nav" href="/docs">Docs</a>
        <div className="sep" />
        <div className="who">Signed in as <strong>{session.user.name}</strong></div>
        <button onClick={signOut}>Sign out</button>
      </nav>
      <main id="content">
        <Suspense fallback={<Loading what="the page" />}>{children}</Suspense>
      </main>
    </div>
  );
}
