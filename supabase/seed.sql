-- Local seed: two users, 33 live sessions and 22 live summaries (plus a few soft-deleted
-- ones). The seed runs after the migrations, so the registered targets' insert triggers
-- queue every live row: 55 pending jobs, as in the user's guide.

insert into auth.users (id, email, raw_user_meta_data) values
  ('a11ce000-0000-4000-8000-000000000001', 'alice@example.com', '{"full_name": "Alice Moreau"}'),
  ('b0b00000-0000-4000-8000-000000000002', 'bob@example.com', '{"full_name": "Bob Okafor"}');

-- Sessions: 18 live for Alice, 15 live for Bob, 3 soft-deleted.
insert into public.sessions (id, user_id, title, created_at, deleted_at) values
  ('5e551000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001',
   'Sourdough starter revival: rye feeding schedule and hydration math', now() - interval '41 days', null),
  ('5e551000-0000-4000-8000-000000000002', 'b0b00000-0000-4000-8000-000000000002',
   'Kubernetes ingress TLS certificates not renewing after the cert-manager upgrade', now() - interval '40 days', null),
  ('5e551000-0000-4000-8000-000000000003', 'a11ce000-0000-4000-8000-000000000001',
   'Weekly 1:1 with Priya', now() - interval '39 days', null),
  ('5e551000-0000-4000-8000-000000000004', 'a11ce000-0000-4000-8000-000000000001',
   'Q3 roadmap review: search relevance, onboarding funnel and billing migration', now() - interval '38 days', null),
  ('5e551000-0000-4000-8000-000000000005', 'b0b00000-0000-4000-8000-000000000002',
   'Postgres slow query on orders by customer_id', now() - interval '37 days', null),
  ('5e551000-0000-4000-8000-000000000006', 'a11ce000-0000-4000-8000-000000000001',
   'Interview loop debrief: senior frontend engineer', now() - interval '36 days', null),
  ('5e551000-0000-4000-8000-000000000007', 'b0b00000-0000-4000-8000-000000000002',
   'Marathon training block, weeks 9 to 12', now() - interval '35 days', null),
  ('5e551000-0000-4000-8000-000000000008', 'a11ce000-0000-4000-8000-000000000001',
   'Reading group: Designing Data-Intensive Applications, chapter 7 on transactions', now() - interval '34 days', null),
  ('5e551000-0000-4000-8000-000000000009', 'b0b00000-0000-4000-8000-000000000002',
   'Incident review: checkout 502s during the Friday deploy', now() - interval '33 days', null),
  ('5e551000-0000-4000-8000-000000000010', 'a11ce000-0000-4000-8000-000000000001',
   'Spanish conversation practice', now() - interval '32 days', null),
  ('5e551000-0000-4000-8000-000000000011', 'a11ce000-0000-4000-8000-000000000001',
   'Planning the kitchen renovation budget with the contractor quotes side by side', now() - interval '31 days', null),
  ('5e551000-0000-4000-8000-000000000012', 'b0b00000-0000-4000-8000-000000000002',
   'Pairing on the React Native offline sync bug', now() - interval '30 days', null),
  ('5e551000-0000-4000-8000-000000000013', 'a11ce000-0000-4000-8000-000000000001',
   'Tax documents checklist', now() - interval '29 days', null),
  ('5e551000-0000-4000-8000-000000000014', 'b0b00000-0000-4000-8000-000000000002',
   'Design critique: new settings page and notification preferences', now() - interval '28 days', null),
  ('5e551000-0000-4000-8000-000000000015', 'a11ce000-0000-4000-8000-000000000001',
   'Customer call: Northwind Logistics renewal and their SSO requirements', now() - interval '27 days', null),
  ('5e551000-0000-4000-8000-000000000016', 'b0b00000-0000-4000-8000-000000000002',
   'Learning Rust ownership and borrowing, exercises 1 to 6', now() - interval '26 days', null),
  ('5e551000-0000-4000-8000-000000000017', 'a11ce000-0000-4000-8000-000000000001',
   'Sprint retrospective', now() - interval '25 days', null),
  ('5e551000-0000-4000-8000-000000000018', 'b0b00000-0000-4000-8000-000000000002',
   'Home network: moving the NAS to its own VLAN', now() - interval '24 days', null),
  ('5e551000-0000-4000-8000-000000000019', 'a11ce000-0000-4000-8000-000000000001',
   'Board deck outline for the Series A update', now() - interval '23 days', null),
  ('5e551000-0000-4000-8000-000000000020', 'b0b00000-0000-4000-8000-000000000002',
   'Migrating cron jobs from the old VM to managed scheduled tasks', now() - interval '22 days', null),
  ('5e551000-0000-4000-8000-000000000021', 'a11ce000-0000-4000-8000-000000000001',
   'Mentoring session with Tomás on code review habits', now() - interval '21 days', null),
  ('5e551000-0000-4000-8000-000000000022', 'b0b00000-0000-4000-8000-000000000002',
   'Budget', now() - interval '20 days', null),
  ('5e551000-0000-4000-8000-000000000023', 'a11ce000-0000-4000-8000-000000000001',
   'Pricing experiment results: annual plan discount from 15% to 20%', now() - interval '19 days', null),
  ('5e551000-0000-4000-8000-000000000024', 'b0b00000-0000-4000-8000-000000000002',
   'Physiotherapy exercises for the left knee', now() - interval '18 days', null),
  ('5e551000-0000-4000-8000-000000000025', 'a11ce000-0000-4000-8000-000000000001',
   'Accessibility audit of the signup flow (screen readers, focus order, contrast)', now() - interval '17 days', null),
  ('5e551000-0000-4000-8000-000000000026', 'b0b00000-0000-4000-8000-000000000002',
   'Book club: The Left Hand of Darkness', now() - interval '16 days', null),
  ('5e551000-0000-4000-8000-000000000027', 'a11ce000-0000-4000-8000-000000000001',
   'Vendor security questionnaire for Acme Health', now() - interval '15 days', null),
  ('5e551000-0000-4000-8000-000000000028', 'b0b00000-0000-4000-8000-000000000002',
   'Load test plan for the public API before the launch', now() - interval '14 days', null),
  ('5e551000-0000-4000-8000-000000000029', 'a11ce000-0000-4000-8000-000000000001',
   'Offsite agenda', now() - interval '12 days', null),
  ('5e551000-0000-4000-8000-000000000030', 'b0b00000-0000-4000-8000-000000000002',
   'Choosing between Kafka and a Postgres outbox for order events', now() - interval '10 days', null),
  ('5e551000-0000-4000-8000-000000000031', 'a11ce000-0000-4000-8000-000000000001',
   'Parent-teacher conference notes for Léa', now() - interval '7 days', null),
  ('5e551000-0000-4000-8000-000000000032', 'b0b00000-0000-4000-8000-000000000002',
   'Brainstorm: names for the analytics feature', now() - interval '4 days', null),
  ('5e551000-0000-4000-8000-000000000033', 'a11ce000-0000-4000-8000-000000000001',
   'Quarterly OKR check-in with the growth team', now() - interval '2 days', null),
  -- soft-deleted
  ('5e551000-0000-4000-8000-000000000034', 'a11ce000-0000-4000-8000-000000000001',
   'Untitled session', now() - interval '30 days', now() - interval '29 days'),
  ('5e551000-0000-4000-8000-000000000035', 'b0b00000-0000-4000-8000-000000000002',
   'Duplicate: Postgres slow query on orders', now() - interval '37 days', now() - interval '36 days'),
  ('5e551000-0000-4000-8000-000000000036', 'a11ce000-0000-4000-8000-000000000001',
   'Test session please ignore', now() - interval '5 days', now() - interval '5 days');

-- Summaries: 12 live for Alice, 10 live for Bob, 2 soft-deleted.
insert into public.summaries (id, user_id, session_id, content, created_at, deleted_at) values
  ('50a40000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000001',
   'The starter had gone sluggish after two weeks in the fridge. Plan: feed twice a day at 1:2:2 (starter:rye:water) for three days, '
   'keep it near 26 °C, and only bake once it doubles within six hours. Hydration for the loaf stays at 75%, counting the flour and '
   'water inside the starter.', now() - interval '41 days', null),
  ('50a40000-0000-4000-8000-000000000002', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000002',
   'After upgrading cert-manager from 1.11 to 1.14 the ingress certificates stopped renewing. The new version no longer reads the '
   'deprecated ingress-class annotation, so the HTTP-01 solver pods never received traffic and the challenges stayed pending.' || E'\n\n' ||
   'We switched the ClusterIssuer to ingressClassName: nginx, deleted the stuck Challenge and Order objects, and the certificates '
   'were reissued within two minutes. The staging cluster had the same problem but had not expired yet.' || E'\n\n' ||
   'Follow-ups: add an alert on certificates expiring within 14 days, pin the chart version in the GitOps repository, and read the '
   'release notes before the next minor upgrade instead of after it.', now() - interval '40 days', null),
  ('50a40000-0000-4000-8000-000000000003', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000003',
   'Priya wants more ownership of the search project. Agreed she leads the relevance work next quarter; I review her design doc by Friday.',
   now() - interval '39 days', null),
  ('50a40000-0000-4000-8000-000000000004', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000004',
   'Three themes for Q3. Search relevance: ranking is still keyword-only and customers complain that synonyms are missed; we will '
   'try embeddings for the top 20% of queries first and measure click-through before and after.' || E'\n\n' ||
   'Onboarding funnel: 38% of trials never create a second project. Two experiments are queued: a checklist in the empty state, and '
   'an email on day three that links to the template gallery.' || E'\n\n' ||
   'Billing migration: the move to the new payment provider slips to August because of the tax engine integration. Finance needs two '
   'weeks of parallel invoicing before we switch, and support wants a macro for customers whose card is declined during the move.' || E'\n\n' ||
   'Decisions: no new features on the legacy dashboard; the mobile team joins the onboarding work for the first six weeks.',
   now() - interval '38 days', null),
  ('50a40000-0000-4000-8000-000000000005', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000005',
   'The orders query did a sequential scan because the index was on (created_at, customer_id). A new index on (customer_id, created_at desc) '
   'took the p95 from 1.8 s to 12 ms.', now() - interval '37 days', null),
  ('50a40000-0000-4000-8000-000000000006', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000006',
   'Strong hire on technical skills, some concern about collaboration. Two interviewers want a reference check before the offer.',
   now() - interval '36 days', null),
  ('50a40000-0000-4000-8000-000000000007', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000007',
   'Long runs go to 28, 30, 24 and 32 km. Tempo on Tuesdays, intervals on Thursdays, easy everything else.',
   now() - interval '35 days', null),
  ('50a40000-0000-4000-8000-000000000008', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000008',
   'Chapter 7 walks through isolation levels by the anomalies each one allows. Read committed prevents dirty reads and dirty writes but '
   'allows read skew; snapshot isolation fixes read skew but still allows write skew, which is why the on-call example can end with '
   'nobody on call.' || E'\n\n' ||
   'Discussion: our own code relies on read committed almost everywhere. The double-booking bug from last year was write skew; we '
   'fixed it with a unique constraint, which is the cheapest form of materialising the conflict. Serializable snapshot isolation '
   'would have caught it too, at the price of retries we do not handle today.' || E'\n\n' ||
   'Next time: chapter 8, the trouble with distributed systems. Marc brings examples from the payments outage.',
   now() - interval '34 days', null),
  ('50a40000-0000-4000-8000-000000000009', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000009',
   'Root cause: the new release raised the connection pool size, the database hit max_connections and the load balancer returned 502s '
   'for eleven minutes. Rollback fixed it.' || E'\n\n' ||
   'Actions: put PgBouncer in front of the database, add a deploy check that compares pool size times replicas with the server limit, '
   'and page on connection saturation above 80%.', now() - interval '33 days', null),
  ('50a40000-0000-4000-8000-000000000010', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000010',
   'Practised the subjunctive after expressions of doubt. Homework: write ten sentences about travel plans.',
   now() - interval '32 days', null),
  ('50a40000-0000-4000-8000-000000000011', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000011',
   'Quote A is cheapest but excludes electrical work. Quote B includes it and finishes two weeks earlier. Leaning towards B.',
   now() - interval '31 days', null),
  ('50a40000-0000-4000-8000-000000000012', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000012',
   'Offline edits were lost when two devices synced in the same second: the server kept the last write by arrival time. We now send a '
   'per-field version vector and merge on the server.', now() - interval '30 days', null),
  ('50a40000-0000-4000-8000-000000000013', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000014',
   'The settings page mixes account and workspace options. Split into two tabs; notification preferences get a per-channel matrix.',
   now() - interval '28 days', null),
  ('50a40000-0000-4000-8000-000000000014', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000015',
   'Northwind renews for two years if we support SAML with their Azure AD by March. Engineering estimate: four weeks.',
   now() - interval '27 days', null),
  ('50a40000-0000-4000-8000-000000000015', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000016',
   'Finally understood why a mutable borrow ends at its last use rather than at the end of the block.',
   now() - interval '26 days', null),
  ('50a40000-0000-4000-8000-000000000016', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000017',
   'Went well: fewer meetings, faster reviews. Did not go well: flaky end-to-end tests blocked merges twice. Try: quarantine flaky tests.',
   now() - interval '25 days', null),
  ('50a40000-0000-4000-8000-000000000017', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000020',
   'Seven jobs move; two are obsolete. The nightly export needs a longer timeout than the scheduler allows, so it becomes a queue worker.',
   now() - interval '22 days', null),
  ('50a40000-0000-4000-8000-000000000018', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000023',
   'The 20% discount raised annual conversions from 11% to 14% with no measurable drop in revenue per customer over six weeks.',
   now() - interval '19 days', null),
  ('50a40000-0000-4000-8000-000000000019', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000028',
   'Target 2,000 requests per second at p99 under 300 ms. Use recorded production traffic, run against staging with production-sized data.',
   now() - interval '14 days', null),
  ('50a40000-0000-4000-8000-000000000020', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000025',
   'Focus jumps back to the top after each validation error and the password rules are not announced. Both are fixed in the next release.',
   now() - interval '17 days', null),
  ('50a40000-0000-4000-8000-000000000021', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000030',
   'Kafka gives us replay and fan-out but another system to run. An outbox table in Postgres with a relay process covers today''s '
   'volume of about 200 events a second and keeps the event in the same transaction as the order.' || E'\n\n' ||
   'Decision: outbox now, with the relay writing to a topic later if a second consumer appears. Revisit at 2,000 events a second.',
   now() - interval '10 days', null),
  ('50a40000-0000-4000-8000-000000000022', 'a11ce000-0000-4000-8000-000000000001', null,
   'Notes to self: renew the passport before June, book the dentist, and cancel the unused streaming subscription.',
   now() - interval '3 days', null),
  -- soft-deleted
  ('50a40000-0000-4000-8000-000000000023', 'b0b00000-0000-4000-8000-000000000002', '5e551000-0000-4000-8000-000000000035',
   'Duplicate of the orders query summary.', now() - interval '37 days', now() - interval '36 days'),
  ('50a40000-0000-4000-8000-000000000024', 'a11ce000-0000-4000-8000-000000000001', '5e551000-0000-4000-8000-000000000036',
   'Test summary.', now() - interval '5 days', now() - interval '5 days');
