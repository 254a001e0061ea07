'use client';
import { useState, type FormEvent } from 'react';
import { signIn } from 'next-auth/react';

export default function Login() {
  const [error, setError] = useState('');
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const res = await signIn('credentials', {
      username: form.get('username'),
      password: form.get('password'),
      redirect: false,
    });
    if (res?.ok) window.location.assign('/');
    else setError('Wrong user or password (demo users: alice, bob; password: demo)');
  }
  return (
    <main>
      <form className="login" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to Herald chat</h1>
        <p className="hint">Demo users: alice or bob, password demo.</p>
        <label>
          User
          <input data-testid="login-user" name="username" placeholder="alice or bob" autoComplete="username" />
        </label>
        <label>
          Password
          <input
            data-testid="login-password"
            name="password"
            type="password"
            placeholder="demo"
            autoComplete="current-password"
          />
        </label>
        <button data-testid="login-submit" type="submit">
          Sign in
        </button>
        {error && <p role="alert">{error}</p>}
      </form>
    </main>
  );
}
