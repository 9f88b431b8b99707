// The demo's signed-in dev user: `serve --demo` hands out a user JWT at
// /demo/session (a real app gets it from its auth provider, e.g. Supabase).
// Kept in localStorage so a reload while the server is down still knows who
// the user is and can show their last verified balance.
const key = 'tokenmeter-demo:session';

export interface Session { user_id: string; access_token: string }

export function storedSession(): Session | null {
  try {
    return JSON.parse(localStorage.getItem(key) ?? 'null') as Session | null;
  } catch {
    return null;
  }
}

let pending: Promise<Session> | null = null;

export function fetchSession(): Promise<Session> {
  pending ??= fetch('/demo/session', { cache: 'no-store' })
    .then(async (response) => {
      if (!response.ok) throw new Error(`session: HTTP ${response.status}`);
      const session = (await response.json()) as Session;
      localStorage.setItem(key, JSON.stringify(session));
      return session;
    })
    .finally(() => (pending = null));
  return pending;
}

// The newest token: the stored one, refreshed from the server when it can be.
export async function accessToken(): Promise<string | null> {
  try {
    return (await fetchSession()).access_token;
  } catch {
    return storedSession()?.access_token ?? null;
  }
}
