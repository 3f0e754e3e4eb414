-- Customers are known to routing by a keyed pseudonym, and their personal
-- fields are sealed in the log. Rows made before then hold ids in clear and
-- no pseudonym: they are dropped, and the projector builds them again from
-- the log (from sequence 1), with pseudonyms.
TRUNCATE complaints, timeline, ceo_slots, policies, company;
DELETE FROM checkpoint;

ALTER TABLE complaints ADD COLUMN customer_ref text NOT NULL;
DROP INDEX complaints_customer;
CREATE INDEX complaints_customer ON complaints (customer_ref, received_at DESC, complaint_id DESC);

-- A CEO slot names its customer by pseudonym only.
ALTER TABLE ceo_slots RENAME COLUMN customer_id TO customer_ref;
