-- When the current streak of password failures began (0: no streak). A lockout refuses grants
-- created since then (RT-14: nobody who knew the password signed in during the streak, which a
-- success would have ended), never those of sessions that existed before it (#23).
ALTER TABLE users ADD COLUMN failures_since INTEGER NOT NULL DEFAULT 0;
