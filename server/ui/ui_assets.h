/* ui_assets.h - the page's static files (server/ui/), embedded at build time
 * by embed.py into the generated ui_assets.c. Read-only data: any thread. */
#ifndef RESNETD_UI_ASSETS_H
#define RESNETD_UI_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;         /* the file name: "index.html", "app.js", ... */
    const char *content_type; /* with charset for text */
    const unsigned char *data;
    size_t len;
    const char *etag;         /* quoted, e.g. "\"0123456789abcdef\"" */
} ui_asset_t;

extern const ui_asset_t ui_assets[];
extern const int ui_asset_count;

#endif
