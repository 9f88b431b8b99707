-- One authorize + commit pair as bare SQL, what the server does for it minus
-- HTTP, JSON, receipts and idempotency: the guarded UPDATE that reserves,
-- the reservation row, then the UPDATE that charges, the reservation settled
-- and the token_usage row. Two transactions, as the two requests are.
\set uid random(1, :users)
\set rid random(1, 1000000000000000)
BEGIN;
UPDATE usage_limits SET tokens_reserved = tokens_reserved + 150
  WHERE user_id = 'u' || :uid AND period_start = 0
    AND tokens_used + tokens_reserved + 150 <= tokens_limit
  RETURNING tokens_reserved;
INSERT INTO reservations (id, user_id, operation, model, multiplier_numerator, multiplier_denominator,
                          catalog_version, tokens, avatars, state, created_at, expires_at)
  VALUES ('r' || :rid, 'u' || :uid, 'chat', 'gpt-4o-mini', 1, 1, 'bench', 150, 0, 'open', 0, 600);
COMMIT;
BEGIN;
UPDATE usage_limits SET tokens_reserved = tokens_reserved - 150, tokens_used = tokens_used + 120
  WHERE user_id = 'u' || :uid AND period_start = 0;
UPDATE reservations SET state = 'committed', settled_at = 1 WHERE id = 'r' || :rid;
INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens,
                         raw_tokens, multiplier, charged_tokens, avatars, reservation_id, catalog_version, created_at)
  VALUES ('e' || :rid, 'u' || :uid, 0, 'chat', 'gpt-4o-mini', 100, 20, 120, '1', 120, 0, 'r' || :rid, 'bench', 1);
COMMIT;
