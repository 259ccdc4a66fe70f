-- events-batch: the Event table for PostgreSQL 15 (psqlODBC).
-- Names are unquoted on purpose: PostgreSQL folds them to lower case
-- (event, event_id), and the program's unquoted SQL folds the same way.
-- Date-times are UTC, stored without zone.
CREATE TABLE IF NOT EXISTS Event (
    Event_ID                 INTEGER          NOT NULL PRIMARY KEY,
    Claim_Audit_Event        BOOLEAN          NOT NULL,
    Completion_Date          TIMESTAMP(3),
    Completion_Percent       DOUBLE PRECISION,
    Due_Date                 TIMESTAMP(3),
    End_Date                 TIMESTAMP(3),
    Entry_Date               TIMESTAMP(3)     NOT NULL,
    Entry_User               VARCHAR(20),
    Event_Processor          VARCHAR(256),
    Event_Type               VARCHAR(32),
    Meta_Data                TEXT,
    Next_Scheduled_Date      TIMESTAMP(3),
    Next_Scheduled_Time      TIMESTAMP(3),
    Priority                 VARCHAR(32),
    Process_Automation_Event BOOLEAN          NOT NULL,
    Reminder                 BOOLEAN          NOT NULL,
    Reminder_Event_ID        INTEGER,
    ReportSeries_Key         INTEGER,
    Start_Date               TIMESTAMP(3),
    Status                   VARCHAR(32),
    Subject                  VARCHAR(512),
    Update_Date              TIMESTAMP(3)     NOT NULL,
    Update_User              VARCHAR(20),
    UserGroup_Key            INTEGER,
    User_ID                  VARCHAR(20)
);

-- One row per connection of the program: the last batch it wrote as one
-- statement in autocommit, and that batch's created flags (a '1' or '0'
-- per row, in event_ID order), written by that statement itself. When the
-- connection drops before the statement's answer arrives, a new connection
-- calls events_batch_outcome_v1 to find out whether the batch committed,
-- and with what outcome per item (SPEC §13). Rows of connections long
-- closed can be deleted at any time (Written is UTC). Optional: without it
-- (or the functions below) every batch begins and commits a transaction.
CREATE TABLE IF NOT EXISTS EventBatchCommit (
    Writer  VARCHAR(36)  NOT NULL PRIMARY KEY,
    Batch   VARCHAR(36)  NOT NULL,
    Created TEXT         NOT NULL,
    Written TIMESTAMP(3) NOT NULL
);

-- The bulk upsert as a function: PostgreSQL parses and plans it once per
-- server connection, where the statement itself is parsed and planned at
-- every request (the program prepares nothing under a name on the server,
-- see the README). Optional: without it the program sends the same upsert
-- as a statement, in a transaction (and logs so once per connection). It
-- holds no state of a session, so a pooler in transaction mode may stand
-- between. Given a writer ($4) and a batch id ($5), the same statement
-- writes the writer's marker row, refused once events_batch_outcome_v1 has
-- given the writer up (then nothing of the batch is written). The program
-- checks (its unit tests) that this text is exactly the statement it would
-- send; a new version of the program that changes the statement also
-- changes the function's name.
CREATE OR REPLACE FUNCTION events_batch_upsert_v2(JSON, INTEGER[], INTEGER[], TEXT, TEXT)
RETURNS TABLE (stored_id INTEGER, created INTEGER, txid BIGINT)
LANGUAGE plpgsql AS $$
BEGIN
	IF $4 IS NULL THEN
		RETURN QUERY INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24 FROM json_to_recordset(CAST($1 AS JSON)) AS j(c0 INTEGER, c1 BOOLEAN, c2 TIMESTAMP, c3 DOUBLE PRECISION, c4 TIMESTAMP, c5 TIMESTAMP, c6 TIMESTAMP, c7 TEXT, c8 TEXT, c9 TEXT, c10 TEXT, c11 TIMESTAMP, c12 TIMESTAMP, c13 TEXT, c14 BOOLEAN, c15 BOOLEAN, c16 INTEGER, c17 INTEGER, c18 TIMESTAMP, c19 TEXT, c20 TEXT, c21 TIMESTAMP, c22 TEXT, c23 INTEGER, c24 TEXT) ON CONFLICT (Event_ID) DO UPDATE SET Claim_Audit_Event = EXCLUDED.Claim_Audit_Event, Completion_Date = EXCLUDED.Completion_Date, Completion_Percent = EXCLUDED.Completion_Percent, Due_Date = EXCLUDED.Due_Date, End_Date = EXCLUDED.End_Date, Entry_Date = CASE WHEN EXCLUDED.Event_ID = ANY(CAST($2 AS INTEGER[])) THEN Event.Entry_Date ELSE EXCLUDED.Entry_Date END, Entry_User = CASE WHEN EXCLUDED.Event_ID = ANY(CAST($3 AS INTEGER[])) THEN Event.Entry_User ELSE EXCLUDED.Entry_User END, Event_Processor = EXCLUDED.Event_Processor, Event_Type = EXCLUDED.Event_Type, Meta_Data = EXCLUDED.Meta_Data, Next_Scheduled_Date = EXCLUDED.Next_Scheduled_Date, Next_Scheduled_Time = EXCLUDED.Next_Scheduled_Time, Priority = EXCLUDED.Priority, Process_Automation_Event = EXCLUDED.Process_Automation_Event, Reminder = EXCLUDED.Reminder, Reminder_Event_ID = EXCLUDED.Reminder_Event_ID, ReportSeries_Key = EXCLUDED.ReportSeries_Key, Start_Date = EXCLUDED.Start_Date, Status = EXCLUDED.Status, Subject = EXCLUDED.Subject, Update_Date = EXCLUDED.Update_Date, Update_User = EXCLUDED.Update_User, UserGroup_Key = EXCLUDED.UserGroup_Key, User_ID = EXCLUDED.User_ID RETURNING Event_ID, CAST((xmax = 0) AS INTEGER), txid_current();
		RETURN;
	END IF;
	RETURN QUERY WITH u (k, c, t) AS (INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24 FROM json_to_recordset(CAST($1 AS JSON)) AS j(c0 INTEGER, c1 BOOLEAN, c2 TIMESTAMP, c3 DOUBLE PRECISION, c4 TIMESTAMP, c5 TIMESTAMP, c6 TIMESTAMP, c7 TEXT, c8 TEXT, c9 TEXT, c10 TEXT, c11 TIMESTAMP, c12 TIMESTAMP, c13 TEXT, c14 BOOLEAN, c15 BOOLEAN, c16 INTEGER, c17 INTEGER, c18 TIMESTAMP, c19 TEXT, c20 TEXT, c21 TIMESTAMP, c22 TEXT, c23 INTEGER, c24 TEXT) ON CONFLICT (Event_ID) DO UPDATE SET Claim_Audit_Event = EXCLUDED.Claim_Audit_Event, Completion_Date = EXCLUDED.Completion_Date, Completion_Percent = EXCLUDED.Completion_Percent, Due_Date = EXCLUDED.Due_Date, End_Date = EXCLUDED.End_Date, Entry_Date = CASE WHEN EXCLUDED.Event_ID = ANY(CAST($2 AS INTEGER[])) THEN Event.Entry_Date ELSE EXCLUDED.Entry_Date END, Entry_User = CASE WHEN EXCLUDED.Event_ID = ANY(CAST($3 AS INTEGER[])) THEN Event.Entry_User ELSE EXCLUDED.Entry_User END, Event_Processor = EXCLUDED.Event_Processor, Event_Type = EXCLUDED.Event_Type, Meta_Data = EXCLUDED.Meta_Data, Next_Scheduled_Date = EXCLUDED.Next_Scheduled_Date, Next_Scheduled_Time = EXCLUDED.Next_Scheduled_Time, Priority = EXCLUDED.Priority, Process_Automation_Event = EXCLUDED.Process_Automation_Event, Reminder = EXCLUDED.Reminder, Reminder_Event_ID = EXCLUDED.Reminder_Event_ID, ReportSeries_Key = EXCLUDED.ReportSeries_Key, Start_Date = EXCLUDED.Start_Date, Status = EXCLUDED.Status, Subject = EXCLUDED.Subject, Update_Date = EXCLUDED.Update_Date, Update_User = EXCLUDED.Update_User, UserGroup_Key = EXCLUDED.UserGroup_Key, User_ID = EXCLUDED.User_ID RETURNING Event_ID, CAST((xmax = 0) AS INTEGER), txid_current()), m AS (INSERT INTO EventBatchCommit (Writer, Batch, Created, Written) VALUES ($4, $5, COALESCE((SELECT string_agg(CAST(c AS TEXT), '' ORDER BY k) FROM u), ''), timezone('UTC', statement_timestamp())) ON CONFLICT (Writer) DO UPDATE SET Batch = EXCLUDED.Batch, Created = EXCLUDED.Created, Written = EXCLUDED.Written WHERE EventBatchCommit.Batch <> 'lost' RETURNING 1) SELECT k, c, t FROM u, m;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'events-batch: writer % was given up after a lost answer', $4;
	END IF;
END
$$;

-- What became of the last batch of a writer whose connection dropped
-- before the answer: its batch id and created flags ("<batch> <flags>"),
-- read after any transaction of that writer still under way; and the
-- writer is given up ('lost'), so that a statement of it still on its way
-- writes nothing. STRICT: a NULL writer answers NULL and does nothing.
CREATE OR REPLACE FUNCTION events_batch_outcome_v1(TEXT)
RETURNS TEXT
LANGUAGE plpgsql STRICT AS $$
DECLARE
	answer TEXT;
BEGIN
	INSERT INTO EventBatchCommit (Writer, Batch, Created, Written) VALUES ($1, 'lost', '', timezone('UTC', statement_timestamp())) ON CONFLICT (Writer) DO NOTHING;
	SELECT Batch || ' ' || Created INTO answer FROM EventBatchCommit WHERE Writer = $1 FOR UPDATE;
	UPDATE EventBatchCommit SET Batch = 'lost', Created = '', Written = timezone('UTC', statement_timestamp()) WHERE Writer = $1;
	RETURN answer;
END
$$;
