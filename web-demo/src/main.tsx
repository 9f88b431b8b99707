import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TokenLimitsProvider } from '@tokenmeter/react';
import { App } from './App';
import { limitsOptions } from './limits';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <TokenLimitsProvider {...limitsOptions}>
      <App />
    </TokenLimitsProvider>
  </StrictMode>,
);
