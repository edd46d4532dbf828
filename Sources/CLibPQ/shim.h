// libpq, PostgreSQL's C client library (Debian: libpq-dev), for the shared job state of a fleet.
#include <postgresql/libpq-fe.h>
