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
