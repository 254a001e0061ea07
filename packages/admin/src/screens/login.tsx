import { useState, type FormEvent } from 'react';
import { AdminApiError, post } from '../api';

export function Login(props: { onLoggedIn: () => void }) {
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    post('login', { password })
      .then(props.onLoggedIn, (err: unknown) => setError(err instanceof AdminApiError ? err.message : String(err)))
      .finally(() => setBusy(false));
  };
  return (
    <form className="login" onSubmit={submit}>
      <h1>Herald admin</h1>
      <label>
        Password
        <input
          type="password"
          name="password"
          autoFocus
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      <button type="submit" disabled={busy || password === ''}>
        Log in
      </button>
      {error && (
        <p className="error" role="alert" data-testid="login-error">
          {error}
        </p>
      )}
    </form>
  );
}
