/*
 * error.c: names and messages of the CRAY_E* codes, from the one table in cray.h, and the
 * library's version.
 */
#include "cray.h"

const char *cray_strerror(int err) {
  switch (err) {
#define CRAY__ERR_MSG(name, code, msg) \
  case CRAY_E##name:                   \
    return msg;
    CRAY_ERRNO_MAP(CRAY__ERR_MSG)
#undef CRAY__ERR_MSG
  }
  return "unknown error";
}

const char *cray_err_name(int err) {
  switch (err) {
#define CRAY__ERR_NAME(name, code, msg) \
  case CRAY_E##name:                    \
    return "CRAY_E" #name;
    CRAY_ERRNO_MAP(CRAY__ERR_NAME)
#undef CRAY__ERR_NAME
  }
  return "CRAY_EUNKNOWN";
}

const char *cray_version(void) { return CRAY_VERSION_STRING; }
