-- One authorize + commit pair as bare SQL, what the server writes for it
-- minus HTTP, JSON, signing and the decision: per request one journal row
-- (the change and its receipt, ~0.9 KB as the server's are) and the account's
-- usage_limits row under its seq guard; the commit adds its token_usage row.
-- Two transactions, as the two requests are (the server's group commit
-- batches many requests into one; pgbench cannot, so this is the stricter
-- baseline per pair, not the faster one).
\set uid random(1, :users)
\set rid random(1, 1000000000000000)
BEGIN;
UPDATE usage_limits SET tokens_reserved = tokens_reserved + 150, seq = seq + 1,
    reservations = '[{"id":"r' || :rid || '","operation":"chat","model":"gpt-4o-mini","multiplier":"1","tokens":150}]'
  WHERE user_id = 'u' || :uid AND period_start = 0 AND seq >= 0;
INSERT INTO ledger_journal (user_id, seq, kind, reservation_id, change, receipt, caller, idempotency_key,
                            request_hash, created_at)
  VALUES ('u' || :uid, :rid * 2, 'authorize', 'r' || :rid,
          '{"kind":"authorize","reservation":{"id":"r' || :rid || '","operation":"chat","model":"gpt-4o-mini","multiplier":"1","catalog_version":"bench","tokens":150,"avatars":0,"expires_at":600}}',
          repeat('x', 620), 'bench', 'k' || :rid || 'a', repeat('h', 43), 0);
COMMIT;
BEGIN;
UPDATE usage_limits SET tokens_reserved = tokens_reserved - 150, tokens_used = tokens_used + 120, seq = seq + 1,
    reservations = '[]'
  WHERE user_id = 'u' || :uid AND period_start = 0 AND seq >= 0;
INSERT INTO ledger_journal (user_id, seq, kind, reservation_id, change, receipt, caller, idempotency_key,
                            request_hash, created_at)
  VALUES ('u' || :uid, :rid * 2 + 1, 'commit', 'r' || :rid,
          '{"kind":"commit","reservation_id":"r' || :rid || '","charge":{"input_tokens":100,"output_tokens":20,"charged_tokens":120}}',
          repeat('x', 620), 'bench', 'k' || :rid || 'c', repeat('h', 43), 1);
INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens,
                         raw_tokens, multiplier, charged_tokens, avatars, reservation_id, catalog_version, created_at)
  VALUES ('e' || :rid, 'u' || :uid, 0, 'chat', 'gpt-4o-mini', 100, 20, 120, '1', 120, 0, 'r' || :rid, 'bench', 1);
COMMIT;
