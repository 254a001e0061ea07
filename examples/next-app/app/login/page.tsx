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
      <h1>Sign in</h1>
      <form onSubmit={submit} style={{ display: 'grid', gap: 8, maxWidth: 280 }}>
        <input data-testid="login-user" name="username" placeholder="alice or bob" autoComplete="username" />
        <input
          data-testid="login-password"
          name="password"
          type="password"
          placeholder="demo"
          autoComplete="current-password"
        />
        <button data-testid="login-submit" type="submit">
          Sign in
        </button>
        {error && <p role="alert">{error}</p>}
      </form>
    </main>
  );
}
