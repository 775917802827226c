// Socket.IO on the namespace /live: the access token goes in the connect payload (read again
// on every reconnect, so a refreshed token is used), and the server puts the socket in the
// rooms of the user's scope. Pages subscribe to event names or prefixes ("notice.").

import { io } from "../vendor/socket.io.mjs";
import { getSession, onSession, refresh } from "./api.js";

let socket = null;
const subscribers = new Set(); // {match, handler}
const statusListeners = new Set();
let connected = false;

function matches(match, name) {
  return match.endsWith(".") || match.endsWith("*")
    ? name.startsWith(match.replace(/\*$/, ""))
    : name === match;
}

function setConnected(value) {
  connected = value;
  for (const listener of statusListeners) listener(value);
}

export function connect() {
  if (socket || !getSession()) return;
  socket = io("/live", {
    auth: (cb) => cb({ token: getSession()?.access_token || "" }),
    reconnectionDelay: 1000,
    reconnectionDelayMax: 10000,
  });
  socket.on("connect", () => setConnected(true));
  socket.on("disconnect", () => setConnected(false));
  socket.on("connect_error", async (error) => {
    setConnected(false);
    // Refused at connect (expired token): refresh, then reconnect with the new one.
    if (String(error?.message).includes("unauthenticated") && getSession()) {
      try {
        await refresh();
        socket?.connect();
      } catch {
        /* the session ended; the router shows the login page */
      }
    }
  });
  socket.onAny((name, data) => {
    for (const { match, handler } of subscribers) {
      if (matches(match, name)) {
        try {
          handler(name, data);
        } catch (error) {
          console.error("realtime handler", name, error);
        }
      }
    }
    // A parent who binds a new centre joins its rooms on the next connect.
    if (name === "parent.linked" || name === "parent.unlinked") reconnect();
  });
}

export function reconnect() {
  if (!socket) return connect();
  socket.disconnect();
  socket.connect();
}

export function disconnect() {
  socket?.disconnect();
  socket = null;
  setConnected(false);
}

// Subscribe to one event name, or to every event with a prefix ("notice."). Returns the
// unsubscribe function (pages call it when they are left).
export function subscribe(match, handler) {
  const entry = { match, handler };
  subscribers.add(entry);
  return () => subscribers.delete(entry);
}

export function onConnection(listener) {
  statusListeners.add(listener);
  listener(connected);
  return () => statusListeners.delete(listener);
}

export const isConnected = () => connected;

onSession((session) => {
  if (!session) disconnect();
  else connect();
});
