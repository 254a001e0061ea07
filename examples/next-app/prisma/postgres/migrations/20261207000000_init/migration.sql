-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "last_seen" TIMESTAMPTZ(3),

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "messages" (
    "id" SERIAL NOT NULL,
    "user_id" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "herald_outbox" (
    "id" BIGSERIAL NOT NULL,
    "method" TEXT NOT NULL DEFAULT 'publish',
    "payload" JSONB NOT NULL,
    "partition" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "herald_outbox_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "herald_outbox_dead" (
    "id" BIGINT NOT NULL,
    "method" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "partition" BIGINT NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL,
    "failed_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "error" TEXT NOT NULL,

    CONSTRAINT "herald_outbox_dead_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "herald_outbox_partition_id_idx" ON "herald_outbox"("partition", "id");

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
