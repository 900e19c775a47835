-- Each revocation event names the audiences it concerns (a JSON list, as `clients.audience`), so
-- that a resource server reads only events about tokens that could be addressed to it (#23,
-- docs/threat-model.md T-14c). NULL: written before this column existed; every reader sees it.
ALTER TABLE revocation_events ADD COLUMN aud TEXT;
