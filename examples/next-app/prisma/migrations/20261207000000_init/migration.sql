-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "last_seen" DATETIME
);

-- CreateTable
CREATE TABLE "messages" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "user_id" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "messages_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "herald_outbox" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "method" TEXT NOT NULL DEFAULT 'publish',
    "payload" JSONB NOT NULL,
    "partition" INTEGER NOT NULL DEFAULT 0,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "herald_outbox_dead" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "method" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "partition" INTEGER NOT NULL,
    "created_at" DATETIME NOT NULL,
    "failed_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "error" TEXT NOT NULL
);

-- CreateIndex
CREATE INDEX "herald_outbox_partition_id_idx" ON "herald_outbox"("partition", "id");
