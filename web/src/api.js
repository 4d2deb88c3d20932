// The API client: a bearer token kept for this browser tab only.
const KEY = "tongge.token";

export const session = {
  token: () => sessionStorage.getItem(KEY),
  headers() {
    const token = this.token();
    return token ? { Authorization: `Bearer ${token}` } : {};
  },
  clear: () => sessionStorage.removeItem(KEY),
  async signIn(username, password) {
    const response = await fetch("/api/v1/auth/token", {
      method: "POST",
      body: new URLSearchParams({ username, password }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail ?? response.statusText);
    sessionStorage.setItem(KEY, body.access_token);
  },
};

/** Call the API; throws an Error carrying the problem+json detail. */
export async function api(path, { method = "GET", body, headers: extra = {} } = {}) {
  const headers = { ...session.headers(), ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error(data?.detail ?? `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.problem = data;
    throw error;
  }
  return data;
}
