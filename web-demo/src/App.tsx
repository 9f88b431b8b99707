import { useEffect, useState } from 'react';
import { Sidebar } from './components/Sidebar';
import { Chat } from './components/Chat';
import { UsagePage } from './components/UsagePage';
import { Documents } from './components/Documents';
import { useTokenLimits } from '@tokenmeter/react';

type Page = 'chat' | 'documents' | 'usage';
const pageOfHash = (): Page =>
  window.location.hash === '#/usage' ? 'usage' : window.location.hash === '#/documents' ? 'documents' : 'chat';

export function App() {
  const limits = useTokenLimits();
  const [page, setPage] = useState<Page>(pageOfHash);
  useEffect(() => {
    const onHash = () => setPage(pageOfHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  return (
    <div className="app">
      <Sidebar limits={limits} />
      <main>
        <nav className="tabs">
          <a href="#/" className={page === 'chat' ? 'active' : ''}>Chat</a>
          <a href="#/documents" className={page === 'documents' ? 'active' : ''} data-testid="nav-documents">Documents</a>
          <a href="#/usage" className={page === 'usage' ? 'active' : ''} data-testid="nav-usage">Usage</a>
        </nav>
        {limits.status === 'error' ? (
          <p className="error" role="alert">Could not load usage: {limits.error.message}</p>
        ) : page === 'chat' ? (
          <Chat limits={limits} />
        ) : page === 'documents' ? (
          <Documents limits={limits} />
        ) : (
          <UsagePage seq={limits.seq} offline={limits.offline} />
        )}
      </main>
    </div>
  );
}
