/*
 * error.c - the table behind error.h.
 */
#include "config.h"

#include <stddef.h>

#include "error.h"

struct err_desc {
	int status;
	const char *type;
	const char *title;
};

static const struct err_desc errors[EB_ERR__COUNT] = {
	[EB_OK] = {200, "urn:events-batch:ok", "OK"},
	[EB_ERR_URI_TOO_LONG] = {414, "urn:events-batch:uri-too-long", "URI Too Long"},
	[EB_ERR_NOT_FOUND] = {404, "urn:events-batch:not-found", "Not Found"},
	[EB_ERR_METHOD] = {405, "urn:events-batch:method-not-allowed", "Method Not Allowed"},
	[EB_ERR_HEALTH_METHOD] = {405, "urn:events-batch:method-not-allowed", "Method Not Allowed"},
	[EB_ERR_USER_AGENT] = {403, "urn:events-batch:user-agent-required", "User-Agent Required"},
	[EB_ERR_API_KEY] = {401, "urn:events-batch:invalid-api-key", "Invalid API Key"},
	[EB_ERR_RATE_LIMITED] = {429, "urn:events-batch:rate-limited", "Too Many Requests"},
	[EB_ERR_TOKEN_MISSING] = {401, "urn:events-batch:token-required", "Bearer Token Required"},
	[EB_ERR_TOKEN_INVALID] = {401, "urn:events-batch:invalid-token", "Invalid Bearer Token"},
	[EB_ERR_DATABASE_UNKNOWN] = {400, "urn:events-batch:unknown-database", "Unknown Database"},
	[EB_ERR_DATABASE_FORBIDDEN] = {403, "urn:events-batch:database-forbidden",
				       "Database Not Allowed"},
	[EB_ERR_MEDIA_TYPE] = {415, "urn:events-batch:unsupported-media-type",
			       "Unsupported Media Type"},
	[EB_ERR_BODY_TOO_LARGE] = {413, "urn:events-batch:body-too-large", "Content Too Large"},
	[EB_ERR_ENCODING] = {415, "urn:events-batch:unsupported-content-encoding",
			     "Unsupported Content Encoding"},
	[EB_ERR_BAD_LENGTH] = {400, "urn:events-batch:bad-content-length", "Bad Content-Length"},
	[EB_ERR_BODY_INVALID] = {400, "urn:events-batch:invalid-body", "Invalid Request Body"},
	[EB_ERR_TOO_MANY_ITEMS] = {413, "urn:events-batch:too-many-items", "Too Many Items"},
	[EB_ERR_DB_UNAVAILABLE] = {503, "urn:events-batch:database-unavailable",
				   "Database Unavailable"},
	[EB_ERR_INTERNAL] = {500, "urn:events-batch:internal-error", "Internal Server Error"},
};

struct status_desc {
	int status;
	const char *line;
};

static const struct status_desc status_lines[] = {
	{200, "200 OK"},
	{400, "400 Bad Request"},
	{401, "401 Unauthorized"},
	{403, "403 Forbidden"},
	{404, "404 Not Found"},
	{405, "405 Method Not Allowed"},
	{413, "413 Content Too Large"},
	{414, "414 URI Too Long"},
	{415, "415 Unsupported Media Type"},
	{429, "429 Too Many Requests"},
	{500, "500 Internal Server Error"},
	{503, "503 Service Unavailable"},
};

static const struct err_desc *
desc(enum eb_err err)
{
	if ((unsigned)err >= EB_ERR__COUNT)
		err = EB_ERR_INTERNAL;
	return &errors[err];
}

int
eb_err_status(enum eb_err err)
{
	return desc(err)->status;
}

const char *
eb_err_title(enum eb_err err)
{
	return desc(err)->title;
}

const char *
eb_err_type(enum eb_err err)
{
	return desc(err)->type;
}

static const char *
status_line(int status)
{
	for (size_t i = 0; i < sizeof(status_lines) / sizeof(status_lines[0]); i++)
		if (status_lines[i].status == status)
			return status_lines[i].line;
	return NULL;
}

const char *
eb_err_status_line(enum eb_err err)
{
	const char *line = status_line(eb_err_status(err));

	return line != NULL ? line : "500 Internal Server Error";
}
