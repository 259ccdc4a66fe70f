-- events-batch: the Event table for MariaDB 10.11 (MariaDB Connector/ODBC).
-- The table is named Event exactly: table names are case-sensitive on Linux.
-- InnoDB for transactions and row locks; utf8mb4 so every character fits;
-- date-times are UTC with milliseconds.
CREATE TABLE IF NOT EXISTS Event (
    Event_ID                 INT            NOT NULL PRIMARY KEY,
    Claim_Audit_Event        BOOLEAN        NOT NULL,
    Completion_Date          DATETIME(3),
    Completion_Percent       DOUBLE,
    Due_Date                 DATETIME(3),
    End_Date                 DATETIME(3),
    Entry_Date               DATETIME(3)    NOT NULL,
    Entry_User               VARCHAR(20),
    Event_Processor          VARCHAR(256),
    Event_Type               VARCHAR(32),
    Meta_Data                LONGTEXT,
    Next_Scheduled_Date      DATETIME(3),
    Next_Scheduled_Time      DATETIME(3),
    Priority                 VARCHAR(32),
    Process_Automation_Event BOOLEAN        NOT NULL,
    Reminder                 BOOLEAN        NOT NULL,
    Reminder_Event_ID        INT,
    ReportSeries_Key         INT,
    Start_Date               DATETIME(3),
    Status                   VARCHAR(32),
    Subject                  VARCHAR(512),
    Update_Date              DATETIME(3)    NOT NULL,
    Update_User              VARCHAR(20),
    UserGroup_Key            INT,
    User_ID                  VARCHAR(20)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per connection of the program: the last batch it wrote, written
-- inside that batch's transaction. When the connection drops during a
-- COMMIT, a new connection reads it to find out whether the batch
-- committed (SPEC §13), instead of answering 503 "outcome unknown". Rows of
-- connections long closed can be deleted at any time (Written is UTC).
CREATE TABLE IF NOT EXISTS EventBatchCommit (
    Writer  CHAR(36)    NOT NULL PRIMARY KEY,
    Batch   CHAR(36)    NOT NULL,
    Written DATETIME(3) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
