/*
 * hello.c - the HTTP ceiling: a FastCGI responder that does what every
 * events-batch request must do at the transport level and nothing else.
 * It reads the whole request body (so the upload costs the same as for the
 * program) and answers a fixed, small 207 JSON envelope.
 *
 * Built by bench/run.sh with: cc -O2 hello.c -lfcgi
 */
#include <stdio.h>

#include <fcgiapp.h>

int
main(void)
{
	static const char reply[] = "{\"data\":[],\"error\":null,\"debug\":{\"activityID\":"
				    "\"00000000-0000-4000-8000-000000000000\"}}";
	static char buf[1 << 16];
	char head[256];
	FCGX_Request req;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&req) >= 0) {
		int n;

		while (FCGX_GetStr(buf, sizeof(buf), req.in) > 0)
			; /* read and drop the whole body */
		/* the same response headers as the program sends */
		n = snprintf(head, sizeof(head),
			     "Status: 207 Multi-Status\r\n"
			     "Content-Type: application/json; charset=utf-8\r\n"
			     "Content-Length: %zu\r\n"
			     "Cache-Control: no-store\r\n"
			     "\r\n",
			     sizeof(reply) - 1);
		FCGX_PutStr(head, n, req.out);
		FCGX_PutStr(reply, (int)sizeof(reply) - 1, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}
