// Generated from openapi.yaml by scripts/service/embed.sh; a test checks they are equal.
enum OpenAPIDocument {
    static let yaml = #"""
    openapi: 3.0.3
    info:
      title: spectralx
      version: 1.0.0
      description: |
        HTTP/1.1 inference service for the SpectralX remote-sensing segmentation model.
        Every error body is JSON: {"error":{"status":415,"code":"unsupported_compression","message":"..."}}.
        The `code` strings are stable API; the complete list is the enum of `components.schemas.Error`
        (a test checks it against the server's error enums).
      license:
        name: see repository
    servers:
      - url: http://127.0.0.1:8080
    tags:
      - name: health
      - name: domains
      - name: inference
      - name: admin
      - name: jobs
      - name: observability
      - name: ogc
        description: OGC API - Processes - Part 1 Core 1.0 (one process per loaded domain)
    paths:
      /healthz:
        get:
          tags: [health]
          summary: Liveness
          operationId: healthz
          responses:
            "200":
              description: The process serves requests.
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      status: {type: string, example: ok}
      /readyz:
        get:
          tags: [health]
          summary: Readiness (backbone and at least one domain loaded)
          operationId: readyz
          responses:
            "200":
              description: Ready.
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      status: {type: string, example: ready}
                      domains:
                        type: array
                        items: {type: string}
                      jobs:
                        type: string
                        description: >-
                          Fleet mode (--jobs-db): "ok", or why the job routes answer 503 (the job database is
                          unreachable). Tile requests are served either way, so the replica stays ready.
            "503":
              $ref: "#/components/responses/Unavailable"
      /v1/domains:
        get:
          tags: [domains]
          summary: Loaded domains (and domains of the store that failed to load)
          operationId: listDomains
          security: [{}, {apiKey: []}, {bearerKey: []}]
          responses:
            "200":
              description: The domains.
              content:
                application/json:
                  schema:
                    type: object
                    required: [domains, failed]
                    properties:
                      domains:
                        type: array
                        items: {$ref: "#/components/schemas/Domain"}
                      failed:
                        type: array
                        items: {$ref: "#/components/schemas/DomainFailure"}
            "401":
              $ref: "#/components/responses/Error"
      /v1/domains/{name}:
        parameters:
          - $ref: "#/components/parameters/DomainName"
        get:
          tags: [domains]
          summary: One loaded domain
          operationId: getDomain
          security: [{}, {apiKey: []}, {bearerKey: []}]
          responses:
            "200":
              description: The domain.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Domain"}
            "401":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
        put:
          tags: [admin]
          summary: Load or reload a domain from the model store
          description: |
            Validates domain.json, the sha256 digests it lists, the safetensors framing, the tensor binding and
            the band/class counts before swapping the domain in; on failure the previously loaded version keeps serving.
            Needs `Authorization: Bearer <admin token>` when the server has an admin token. When the server has
            API keys but no admin token, the admin routes are disabled (403 `admin_disabled`); without any
            credential (local demo) they are open.
          operationId: loadDomain
          security: [{}, {adminToken: []}]
          responses:
            "200":
              description: Reloaded.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Domain"}
            "201":
              description: Loaded for the first time.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Domain"}
            "400":
              $ref: "#/components/responses/Error"
            "401":
              $ref: "#/components/responses/Error"
            "403":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
            "422":
              $ref: "#/components/responses/Error"
        delete:
          tags: [admin]
          summary: Unload a domain (in-flight requests on it finish first)
          operationId: unloadDomain
          security: [{}, {adminToken: []}]
          responses:
            "200":
              description: Unloaded.
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      unloaded: {type: string}
            "401":
              $ref: "#/components/responses/Error"
            "403":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
      /v1/domains/{name}/segment:
        parameters:
          - $ref: "#/components/parameters/DomainName"
        post:
          tags: [inference]
          summary: Segment one tile
          description: |
            The tile is a GeoTIFF (`image/tiff`), a NumPy array of shape (C,H,W) (`application/x-npy`), or either
            as the part named `tile` of a `multipart/form-data` body. Content-Length and chunked bodies and
            `Expect: 100-continue` are accepted. Several `tile` parts are stacked as bands, in order (same CRS and
            extent; grids coarser by an integer factor are resampled bilinearly to the finest; mismatches are 422
            incompatible_stack). The answer has the tile's own width and height. GeoTIFF output is a Cloud-Optimized
            GeoTIFF (512x512 tiles, Deflate + predictor, internal overviews by mode, a colour table with one colour per
            class, class names in GDAL_METADATA, GDAL_NODATA = the output nodata value) with the input's CRS and transform.

            Nodata (service.md 2.1): a band sample is nodata when it equals the input's GDAL_NODATA (unless
            `nodata_mask=false`) or is NaN; a pixel is invalid when all its bands are nodata (`nodata_rule=any`: any band)
            or the file's internal mask says so. Invalid pixels take no part in the min-max statistics, are labelled
            `output_nodata` (default 255, never a class index) and get NaN (float32) or 255 (uint8) scores; windows
            with no valid pixel are not computed. `mode=tile` normalises with the statistics of the whole scene.

            A scene by reference: `Content-Type: application/json` with the body of `POST …/jobs` (`href`, `hrefs`
            or `stac_item`; see there and the SceneReference schema): read in place by range under the server's
            `--fetch-allow` list, within the raster limits; 403 fetch_not_allowed, 422 reference_not_found /
            unmatched_band / unknown_asset / invalid_stac_item / reference_limit_exceeded, 502 reference_unreachable.

            Response headers: `Server-Timing` (decode, preprocess, queue, inference, postprocess, encode, total in ms),
            `X-SpectralX-Batch-Size` (largest batch the request's images ran in), `X-SpectralX-Windows`
            (model inputs used), `X-SpectralX-Mode`, `X-SpectralX-Domain`, `X-SpectralX-Precision` (fp32 or bf16), `X-Request-ID`.
          operationId: segment
          security: [{}, {apiKey: []}, {bearerKey: []}]
          parameters:
            - name: output
              in: query
              description: geotiff (default for TIFF input), npy (default for NPY input), png (colour preview), json (class histogram and timings)
              schema: {type: string, enum: [geotiff, npy, png, json]}
            - name: scores
              in: query
              description: per-class softmax probabilities (float32, K bands / (K,H,W)) instead of uint8 labels
              schema: {type: boolean, default: false}
            - name: mode
              in: query
              description: resize = upstream pipeline (whole tile to 224 and back); tile = sliding 224-pixel windows, overlapping logits averaged (mmseg slide inference)
              schema: {type: string, enum: [resize, tile], default: resize}
            - name: overlap
              in: query
              description: pixels shared by neighbouring windows in tile mode
              schema: {type: integer, minimum: 0, maximum: 223, default: 32}
            - name: timeout
              in: query
              description: seconds the request may wait in the queue before 503 deadline_exceeded
              schema: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 3600}
            - name: nodata_mask
              in: query
              description: treat the input's GDAL_NODATA value as invalid (NaN and internal masks always are)
              schema: {type: boolean, default: true}
            - name: nodata_rule
              in: query
              description: a pixel is invalid when all (default) or any of its bands are nodata
              schema: {type: string, enum: [all, any], default: all}
            - name: output_nodata
              in: query
              description: label of invalid pixels and GDAL_NODATA of label outputs; must not be a class index (400 otherwise)
              schema: {type: integer, minimum: 0, maximum: 255, default: 255}
            - name: scores_dtype
              in: query
              description: with scores=true, float32 probabilities or uint8 round(p*254) with 255 on invalid pixels
              schema: {type: string, enum: [float32, uint8], default: float32}
            - name: precision
              in: query
              description: >-
                arithmetic of the frozen ViT linears: fp32 (the reference) or bf16 (operands rounded to bf16, float32
                accumulation; about twice as fast; everything else stays fp32). Default: the server's `serve --precision`
                (fp32 unless set). bf16 on a server whose CPU lacks AVX512_BF16 is refused with 400 invalid_parameter.
                Batches never mix precisions.
              schema: {type: string, enum: [fp32, bf16]}
          requestBody:
            required: true
            content:
              image/tiff:
                schema: {type: string, format: binary}
              application/x-npy:
                schema: {type: string, format: binary}
              application/json:
                schema: {$ref: "#/components/schemas/SceneReference"}
              multipart/form-data:
                schema:
                  type: object
                  required: [tile]
                  properties:
                    tile:
                      description: the raster; repeat the part to stack bands from several files
                      oneOf:
                        - {type: string, format: binary}
                        - {type: array, items: {type: string, format: binary}}
          responses:
            "200":
              description: Labels (uint8, H×W) or scores (float32, K×H×W).
              headers:
                Server-Timing:
                  schema: {type: string}
                X-SpectralX-Batch-Size:
                  schema: {type: integer}
                X-SpectralX-Windows:
                  schema: {type: integer}
                X-SpectralX-Precision:
                  schema: {type: string, enum: [fp32, bf16]}
              content:
                image/tiff:
                  schema: {type: string, format: binary}
                application/x-npy:
                  schema: {type: string, format: binary}
                image/png:
                  schema: {type: string, format: binary}
                application/json:
                  schema: {$ref: "#/components/schemas/SegmentSummary"}
            "400":
              $ref: "#/components/responses/Error"
            "401":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
            "408":
              $ref: "#/components/responses/Error"
            "411":
              $ref: "#/components/responses/Error"
            "413":
              $ref: "#/components/responses/Error"
            "403":
              description: A scene by reference that the server's fetch policy refuses (or no --fetch-allow).
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "502":
              description: The server holding a scene by reference failed after the retries (reference_unreachable).
              headers:
                Retry-After:
                  schema: {type: integer}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "415":
              $ref: "#/components/responses/Error"
            "422":
              $ref: "#/components/responses/Error"
            "503":
              $ref: "#/components/responses/Unavailable"
      /v1/domains/{name}/jobs:
        parameters:
          - $ref: "#/components/parameters/DomainName"
        post:
          tags: [jobs]
          summary: Submit a scene segmentation job
          description: |
            The body is sent as to `/segment` (GeoTIFF, NumPy (C,H,W), or the `tile` part of a multipart form). It is
            spooled into the jobs directory and checked (format, band count, size limits) before the job is accepted;
            a refused body leaves nothing behind. The answer is `201 Created` with `Location: /v1/jobs/{id}` and the
            status document. The job's windows run through the same batch scheduler as `/segment` at background
            priority: interactive requests are served first, so a job delays a synchronous tile by at most one batch.
            Jobs run one at a time by default (`--max-running-jobs`). Accepted jobs survive restarts (SIGTERM or
            `kill -9`): on start they are queued again and resume at the first row of output tiles (512 rows, or the COG tile size) of the result that
            was not yet durable, with the recorded normalisation statistics (the output equals an uninterrupted
            run's). The result is a Cloud-Optimized GeoTIFF as from `/segment?output=geotiff` (uint8 labels with
            palette and nodata, or scores with `scores=true`). A multipart body carries one `tile` part.
            The upload is bounded by `serve --max-job-body` (default 8 GiB), not by `--max-body` (which bounds every
            other route): a larger `Content-Length` is refused with `413 payload_too_large` from the headers, before
            anything is spooled, and a chunked body as soon as it crosses the limit; the message names the limit.

            **Scenes by reference** (`Content-Type: application/json`, at most 1 MiB; the SceneReference schema):
            `{"inputs": {"href": URL}}`, `{"inputs": {"href": [URL, …]}}` (or `hrefs`: bands of several files stacked
            in order, as `predict --stack`: coarser integer-multiple grids resampled to the finest) or
            `{"inputs": {"stac_item": URL, "assets": [name, …]}}` (without `assets`: for each of the domain's
            `wavelengths_um` the asset band whose `center_wavelength` is nearest, within 2.5 % (at least 0.01 µm) or
            `wavelength_tolerance_um`, each used once, assets with role visual, thumbnail or overview left out; an
            unmatched band is `422 unmatched_band` naming it). URLs are `http(s)://` or `s3://bucket/key` (SigV4, the
            server's AWS variables). The COGs are read in place by range (header, then only the tiles each window
            touches). Every href is opened at submission and its ETag pinned in the job; every later read sends
            `If-Match`, so a file replaced after submission or mid-job fails the job naming both ETags.
            Fetching is off unless the server names URL prefixes or hosts with `--fetch-allow`; a URL off the list,
            `file:`, a redirect leaving the list, or a host resolving to a loopback, link-local (169.254.169.254),
            private or unspecified address the list does not name itself is `403 fetch_not_allowed` before any
            connection. A 404 is `422 reference_not_found` naming the URL; per-request and per-job byte and time
            bounds give `422 reference_limit_exceeded`. The status document reports `bytes_fetched`.
          operationId: submitJob
          security: [{}, {apiKey: []}, {bearerKey: []}]
          parameters:
            - name: mode
              in: query
              description: as for /segment, but the default is tile (sliding windows over the whole scene)
              schema: {type: string, enum: [resize, tile], default: tile}
            - name: overlap
              in: query
              schema: {type: integer, minimum: 0, maximum: 223, default: 32}
            - name: scores
              in: query
              schema: {type: boolean, default: false}
            - name: output
              in: query
              description: only geotiff (the default) is accepted for jobs
              schema: {type: string, enum: [geotiff]}
            - name: scores_dtype
              in: query
              schema: {type: string, enum: [float32, uint8], default: float32}
            - name: nodata_mask
              in: query
              schema: {type: boolean, default: true}
            - name: nodata_rule
              in: query
              schema: {type: string, enum: [all, any], default: all}
            - name: output_nodata
              in: query
              schema: {type: integer, minimum: 0, maximum: 255, default: 255}
            - name: precision
              in: query
              description: as for /segment; recorded with the job
              schema: {type: string, enum: [fp32, bf16]}
          requestBody:
            required: true
            content:
              image/tiff:
                schema: {type: string, format: binary}
              application/x-npy:
                schema: {type: string, format: binary}
              application/json:
                schema: {$ref: "#/components/schemas/SceneReference"}
              multipart/form-data:
                schema:
                  type: object
                  required: [tile]
                  properties:
                    tile: {type: string, format: binary}
          responses:
            "201":
              description: Accepted; the job is queued.
              headers:
                Location:
                  description: /v1/jobs/{id}
                  schema: {type: string}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/JobStatus"}
            "400":
              $ref: "#/components/responses/Error"
            "401":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
            "413":
              description: payload_too_large, the upload is larger than --max-job-body (the message names the limit in bytes).
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "403":
              description: A scene by reference that the server's fetch policy refuses (or no --fetch-allow).
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "502":
              description: The server holding a scene by reference failed after the retries (reference_unreachable).
              headers:
                Retry-After:
                  schema: {type: integer}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "415":
              $ref: "#/components/responses/Error"
            "422":
              $ref: "#/components/responses/Error"
            "503":
              description: too_many_jobs (the jobs directory holds --max-jobs jobs), not_ready or shutting_down; retry after the given seconds.
              headers:
                Retry-After:
                  schema: {type: integer}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "507":
              description: insufficient_storage, the upload would take the jobs directory past --max-jobs-bytes.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
      /v1/jobs:
        get:
          tags: [jobs]
          summary: List jobs (OGC API - Processes jobList)
          description: With API keys configured, only the jobs created with the caller's key (all jobs for the admin token).
          operationId: listJobs
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          parameters:
            - name: status
              in: query
              description: only jobs in these states (comma-separated or repeated)
              schema: {type: string, example: "running,accepted"}
          responses:
            "200":
              description: The jobs, oldest first.
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      jobs:
                        type: array
                        items: {$ref: "#/components/schemas/JobStatus"}
                      links:
                        type: array
                        items: {$ref: "#/components/schemas/Link"}
            "400":
              $ref: "#/components/responses/Error"
            "401":
              $ref: "#/components/responses/Error"
      /v1/jobs/{id}:
        parameters:
          - $ref: "#/components/parameters/JobID"
        get:
          tags: [jobs]
          summary: Job status (OGC API - Processes statusInfo)
          operationId: getJob
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          responses:
            "200":
              description: The status document (a dismissed job is reported until its TTL or the next restart).
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/JobStatus"}
            "400":
              description: invalid_job_id (not a lowercase UUID).
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "401":
              $ref: "#/components/responses/Error"
            "404":
              description: no_such_job (unknown, expired, or created with another API key).
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
        delete:
          tags: [jobs]
          summary: Cancel and remove a job (OGC dismiss)
          description: |
            A queued job is removed at once; a running one stops after the batch in flight (its windows leave the
            queue) and its files are removed as soon as it has. The dismissal is on disk before the answer, so a
            restart never runs the job again. A second DELETE answers 410 job_dismissed.
          operationId: dismissJob
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          responses:
            "200":
              description: The status document with status dismissed.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/JobStatus"}
            "400":
              $ref: "#/components/responses/Error"
            "401":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
            "410":
              description: job_dismissed, the job was dismissed already.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
      /v1/jobs/{id}/results:
        parameters:
          - $ref: "#/components/parameters/JobID"
        get:
          tags: [jobs]
          summary: The job's result raster
          description: |
            The GeoTIFF, with `Content-Length`, `ETag`, `Last-Modified` and `Accept-Ranges: bytes`, so that GDAL opens
            it in place: `gdalinfo /vsicurl/http://host:8080/v1/jobs/{id}/results`. One byte range per request
            (`Range: bytes=a-b`, `a-`, `-n`) answers 206 with `Content-Range`; a range past the end answers 416;
            several ranges, other units or a malformed header are ignored (200, whole file). `If-None-Match`
            answers 304, `If-Range` with another validator sends the whole file.
          operationId: getJobResults
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          parameters:
            - name: Range
              in: header
              schema: {type: string, example: "bytes=0-16383"}
          responses:
            "200":
              description: The whole result.
              headers:
                ETag:
                  schema: {type: string}
                Content-Length:
                  schema: {type: integer}
              content:
                image/tiff:
                  schema: {type: string, format: binary}
            "206":
              description: One byte range.
              headers:
                Content-Range:
                  schema: {type: string}
              content:
                image/tiff:
                  schema: {type: string, format: binary}
            "303":
              description: Fleet mode with `serve --blob-presign`, the result in S3; `Location` is a presigned URL of the object.
              headers:
                Location:
                  schema: {type: string}
            "304":
              description: Not modified (If-None-Match).
            "400":
              $ref: "#/components/responses/Error"
            "401":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
            "409":
              description: result_not_ready, the job is not successful (yet); the message names its status.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            "416":
              description: "range_not_satisfiable, with `Content-Range: bytes */size`."
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
      /v1/domains/{name}/stac:
        parameters:
          - $ref: "#/components/parameters/DomainName"
        get:
          tags: [domains]
          summary: The domain's model card (STAC Item with the Machine Learning Model extension)
          description: |
            A STAC 1.0 Item with MLM v1.5.2 (`mlm:name`, `mlm:architecture`, `mlm:tasks`, `mlm:input` with the bands,
            the per-band per-scene min-max scaling and the 224² input shape, `mlm:output` with `classification:classes`
            and colour hints from the domain's palette), eo band centres and the weight files' sizes and SHA-256
            digests (file extension). `spectralx inspect --stac <store|domain dir>` prints the same for a store on disk.
          operationId: getDomainSTAC
          security: [{}, {apiKey: []}, {bearerKey: []}]
          responses:
            "200":
              description: The STAC Item.
              content:
                application/geo+json:
                  schema:
                    type: object
                    required: [type, stac_version, stac_extensions, id, properties, assets, links]
                    properties:
                      type: {type: string, enum: [Feature]}
                      stac_version: {type: string}
                      stac_extensions: {type: array, items: {type: string}}
                      id: {type: string}
                      properties: {type: object}
                      assets: {type: object}
                      links: {type: array, items: {$ref: "#/components/schemas/Link"}}
            "401":
              $ref: "#/components/responses/Error"
            "404":
              $ref: "#/components/responses/Error"
      /:
        get:
          tags: [ogc]
          summary: OGC API landing page (JSON; the viewer page for browsers)
          description: |
            JSON by default. `?f=html`, or an `Accept` header that ranks text/html above application/json (what browsers
            send), answers the self-contained viewer page. Links: self, service-desc (this document), conformance,
            processes, job-list.
          operationId: ogcLandingPage
          parameters:
            - name: f
              in: query
              schema: {type: string, enum: [json, html]}
          responses:
            "200":
              description: The landing page.
              content:
                application/json:
                  schema:
                    type: object
                    required: [links]
                    properties:
                      title: {type: string}
                      description: {type: string}
                      links: {type: array, items: {$ref: "#/components/schemas/Link"}}
                text/html:
                  schema: {type: string}
            "400":
              $ref: "#/components/responses/OGCException"
      /conformance:
        get:
          tags: [ogc]
          summary: Conformance classes implemented (OGC API - Processes - Part 1 1.0)
          operationId: ogcConformance
          responses:
            "200":
              description: core, ogc-process-description, json, oas30, job-list, dismiss.
              content:
                application/json:
                  schema:
                    type: object
                    required: [conformsTo]
                    properties:
                      conformsTo: {type: array, items: {type: string}}
      /processes:
        get:
          tags: [ogc]
          summary: The processes, one per loaded domain (process id = domain name)
          operationId: ogcProcesses
          security: [{}, {apiKey: []}, {bearerKey: []}]
          responses:
            "200":
              description: Process summaries.
              content:
                application/json:
                  schema:
                    type: object
                    required: [processes, links]
                    properties:
                      processes: {type: array, items: {$ref: "#/components/schemas/ProcessSummary"}}
                      links: {type: array, items: {$ref: "#/components/schemas/Link"}}
            "401":
              $ref: "#/components/responses/OGCException"
      /processes/{processID}:
        parameters:
          - $ref: "#/components/parameters/ProcessID"
        get:
          tags: [ogc]
          summary: Process description (inputs and outputs as JSON Schemas)
          operationId: ogcProcessDescription
          security: [{}, {apiKey: []}, {bearerKey: []}]
          responses:
            "200":
              description: The description; its `describedby` link is the domain's STAC MLM card.
              content:
                application/json:
                  schema:
                    allOf:
                      - $ref: "#/components/schemas/ProcessSummary"
                      - type: object
                        required: [inputs, outputs]
                        properties:
                          inputs: {type: object, additionalProperties: {type: object}}
                          outputs: {type: object, additionalProperties: {type: object}}
            "401":
              $ref: "#/components/responses/OGCException"
            "404":
              $ref: "#/components/responses/OGCException"
            "503":
              $ref: "#/components/responses/OGCException"
      /processes/{processID}/execution:
        parameters:
          - $ref: "#/components/parameters/ProcessID"
        post:
          tags: [ogc]
          summary: Execute a process (synchronous, or asynchronous with Prefer respond-async)
          description: |
            An OGC execute request. Inputs: `scene` (required; base64 inline, `{"value", "mediaType", "encoding": "base64"}`
            or a bare base64 string; `href` is refused, the server makes no outbound requests), `mode`, `overlap`,
            `scores`, `scores_dtype`, `nodata_mask`, `nodata_rule`, `output_nodata`, `precision`. Output `labels`
            (`outputs.labels.format.mediaType`: image/tiff (default), application/x-npy or image/png, synchronous only).
            Without `Prefer: respond-async` the scene (at most 4096×4096 px) is segmented at once and the answer is the
            raster (`response: raw`, default) or `{"labels": {"value": base64, ...}}` (`response: document`). With it
            (and a jobs directory) a job is created: 201, `Location: /jobs/{jobID}`, `Preference-Applied: respond-async`.
          operationId: ogcExecute
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          parameters:
            - name: Prefer
              in: header
              schema: {type: string, example: respond-async}
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [inputs]
                  properties:
                    inputs:
                      type: object
                      required: [scene]
                      properties:
                        scene:
                          oneOf:
                            - {type: string, format: byte}
                            - type: object
                              required: [value]
                              properties:
                                value: {type: string, format: byte}
                                mediaType: {type: string, enum: [image/tiff, application/x-npy]}
                                encoding: {type: string, enum: [base64]}
                        mode: {type: string, enum: [tile, resize]}
                        overlap: {type: integer, minimum: 0, maximum: 223}
                        scores: {type: boolean}
                        scores_dtype: {type: string, enum: [float32, uint8]}
                        nodata_mask: {type: boolean}
                        nodata_rule: {type: string, enum: [all, any]}
                        output_nodata: {type: integer, minimum: 0, maximum: 255}
                        precision: {type: string, enum: [fp32, bf16]}
                    outputs: {type: object}
                    response: {type: string, enum: [raw, document]}
          responses:
            "200":
              description: Synchronous result.
              content:
                image/tiff; application=geotiff; profile=cloud-optimized:
                  schema: {type: string, format: binary}
                application/x-npy:
                  schema: {type: string, format: binary}
                image/png:
                  schema: {type: string, format: binary}
                application/json:
                  schema:
                    type: object
                    properties:
                      labels:
                        type: object
                        properties:
                          value: {type: string, format: byte}
                          mediaType: {type: string}
                          encoding: {type: string}
            "201":
              description: Job created (statusInfo).
              headers:
                Location:
                  schema: {type: string}
                Preference-Applied:
                  schema: {type: string}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/JobStatus"}
            "400":
              $ref: "#/components/responses/OGCException"
            "401":
              $ref: "#/components/responses/OGCException"
            "404":
              $ref: "#/components/responses/OGCException"
            "413":
              $ref: "#/components/responses/OGCException"
            "415":
              $ref: "#/components/responses/OGCException"
            "422":
              $ref: "#/components/responses/OGCException"
            "503":
              $ref: "#/components/responses/OGCException"
            "507":
              $ref: "#/components/responses/OGCException"
      /jobs:
        get:
          tags: [ogc]
          summary: Job list (the same jobs as /v1/jobs; links under /jobs, processID = domain)
          operationId: ogcJobs
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          parameters:
            - name: status
              in: query
              schema: {type: string, example: "running,accepted"}
          responses:
            "200":
              description: The jobs, oldest first.
              content:
                application/json:
                  schema:
                    type: object
                    required: [jobs, links]
                    properties:
                      jobs: {type: array, items: {$ref: "#/components/schemas/JobStatus"}}
                      links: {type: array, items: {$ref: "#/components/schemas/Link"}}
            "400":
              $ref: "#/components/responses/OGCException"
            "401":
              $ref: "#/components/responses/OGCException"
            "404":
              $ref: "#/components/responses/OGCException"
      /jobs/{jobID}:
        parameters:
          - $ref: "#/components/parameters/OGCJobID"
        get:
          tags: [ogc]
          summary: Job status (statusInfo)
          operationId: ogcJob
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          responses:
            "200":
              description: The status.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/JobStatus"}
            "401":
              $ref: "#/components/responses/OGCException"
            "404":
              $ref: "#/components/responses/OGCException"
        delete:
          tags: [ogc]
          summary: Dismiss a job
          operationId: ogcDismissJob
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          responses:
            "200":
              description: The status, dismissed.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/JobStatus"}
            "401":
              $ref: "#/components/responses/OGCException"
            "404":
              $ref: "#/components/responses/OGCException"
            "410":
              $ref: "#/components/responses/OGCException"
      /jobs/{jobID}/results:
        parameters:
          - $ref: "#/components/parameters/OGCJobID"
        get:
          tags: [ogc]
          summary: Job results
          description: |
            The results document `{"labels": {"href": "/jobs/{jobID}/results?f=tiff", "type": ...}}`; with `?f=tiff` or
            `Accept: image/tiff` the Cloud-Optimized GeoTIFF itself (ranges, ETag, as /v1/jobs/{id}/results).
            A job not (yet) successful answers 404 result-not-ready.
          operationId: ogcJobResults
          security: [{}, {apiKey: []}, {bearerKey: []}, {adminToken: []}]
          parameters:
            - name: f
              in: query
              schema: {type: string, enum: [json, tiff, geotiff]}
          responses:
            "200":
              description: The results document or the raster.
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      labels: {$ref: "#/components/schemas/Link"}
                image/tiff; application=geotiff; profile=cloud-optimized:
                  schema: {type: string, format: binary}
            "206":
              description: A byte range of the raster.
              content:
                image/tiff; application=geotiff; profile=cloud-optimized:
                  schema: {type: string, format: binary}
            "304":
              description: Not modified.
            "401":
              $ref: "#/components/responses/OGCException"
            "404":
              $ref: "#/components/responses/OGCException"
            "416":
              $ref: "#/components/responses/OGCException"
      /metrics:
        get:
          tags: [observability]
          summary: Prometheus text exposition
          description: |
            spectralx_http_requests_total{route,method,status}, spectralx_http_request_duration_seconds{route},
            spectralx_queue_depth, spectralx_batch_size (histogram), spectralx_queue_wait_seconds, spectralx_batch_seconds,
            spectralx_model_stage_seconds{stage}, spectralx_queue_rejections_total{reason}, spectralx_domains_loaded,
            spectralx_jobs{status} (jobs by status), spectralx_job_queue_length (accepted jobs waiting),
            spectralx_job_windows_total (job windows computed; rate() gives windows/s), spectralx_job_windows_per_second
            (current rate of the running jobs).
          operationId: metrics
          responses:
            "200":
              description: Metrics.
              content:
                text/plain:
                  schema: {type: string}
      /openapi.yaml:
        get:
          tags: [observability]
          summary: This document
          operationId: openapi
          responses:
            "200":
              description: The OpenAPI document.
              content:
                application/yaml:
                  schema: {type: object, description: this document (YAML)}
    components:
      securitySchemes:
        apiKey:
          type: apiKey
          in: header
          name: X-API-Key
        bearerKey:
          type: http
          scheme: bearer
          description: an API key as a bearer token
        adminToken:
          type: http
          scheme: bearer
          description: the admin token (PUT/DELETE /v1/domains/{name})
      parameters:
        DomainName:
          name: name
          in: path
          required: true
          schema: {type: string, pattern: "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", example: demo}
        ProcessID:
          name: processID
          in: path
          required: true
          schema: {type: string, example: demo}
        OGCJobID:
          name: jobID
          in: path
          required: true
          schema: {type: string}
        JobID:
          name: id
          in: path
          required: true
          schema: {type: string, format: uuid, pattern: "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
      responses:
        OGCException:
          description: An OGC exception document (type, title, status, detail, plus the stable code), also for the errors
            the HTTP layer raises once it has read the request line (framing, body size, timeouts).
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Exception"}
        Error:
          description: An error.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Error"}
        Unavailable:
          description: Queue full, not ready, deadline passed or shutting down; retry after the given seconds.
          headers:
            Retry-After:
              schema: {type: integer}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Error"}
      schemas:
        SceneReference:
          type: object
          description: |
            A scene read in place instead of uploaded (`Content-Type: application/json`), when the server runs with
            `--fetch-allow` (403 fetch_not_allowed otherwise, and for any URL, resolved address or redirect the list does
            not allow). `href`: one COG/GeoTIFF URL (http, https, s3://bucket/key), or a list stacked as bands in order
            (grids coarser by an integer factor resampled to the finest). `stac_item`: a STAC Item (URL, or the item
            itself with absolute hrefs) whose `assets` are used in the given order, or by default the asset bands whose
            centre wavelengths pair with the domain's `wavelengths_um` (nearest within `wavelength_tolerance_um`,
            default 2.5 % of the wavelength and at least 0.01 um, each used once; an unmatched band is 422
            unmatched_band naming it). Each object's ETag is pinned at submission; a job whose file changes fails naming
            both ETags. A URL that answers 404 is 422 reference_not_found at submission. URLs with user information are
            refused (credentials are never stored); S3 is read with the server's AWS credentials.
          required: [inputs]
          properties:
            inputs:
              type: object
              properties:
                href:
                  oneOf:
                    - {type: string, maxLength: 4096}
                    - {type: array, minItems: 1, maxItems: 64, items: {type: string, maxLength: 4096}}
                hrefs: {type: array, minItems: 1, maxItems: 64, items: {type: string, maxLength: 4096}, description: the same as a list in href}
                stac_item:
                  oneOf:
                    - {type: string, maxLength: 4096}
                    - {type: object}
                assets:
                  type: array
                  minItems: 1
                  maxItems: 64
                  items: {type: string}
                wavelength_tolerance_um: {type: number, exclusiveMinimum: true, minimum: 0, maximum: 1}
        Exception:
          type: object
          description: OGC API exception (RFC 7807 members).
          required: [type, title, status, detail, code]
          properties:
            type: {type: string, description: "an OGC exception URI (no-such-process, no-such-job, result-not-ready) or urn:spectralx:error:<code>"}
            title: {type: string}
            status: {type: integer}
            detail: {type: string, maxLength: 1024}
            code: {type: string}
        ProcessSummary:
          type: object
          required: [id, version, jobControlOptions, links]
          properties:
            id: {type: string}
            version: {type: string}
            title: {type: string}
            description: {type: string}
            keywords: {type: array, items: {type: string}}
            jobControlOptions: {type: array, items: {type: string, enum: [sync-execute, async-execute, dismiss]}}
            outputTransmission: {type: array, items: {type: string, enum: [value, reference]}}
            links: {type: array, items: {$ref: "#/components/schemas/Link"}}
        Error:
          type: object
          required: [error]
          properties:
            error:
              type: object
              required: [status, code, message]
              properties:
                status: {type: integer}
                code:
                  type: string
                  # Generated from APIErrorCode and HTTPErrorCode; ErrorCodeTests keeps this list equal to the code.
                  enum:
                    - admin_disabled
                    - bad_request
                    - blob_store_unavailable
                    - body_too_slow
                    - cancelled
                    - conflicting_framing
                    - deadline_exceeded
                    - empty_body
                    - expectation_failed
                    - fetch_not_allowed
                    - header_fields_too_large
                    - http_version_not_supported
                    - incompatible_stack
                    - incompatible_tile
                    - insufficient_storage
                    - internal_error
                    - invalid_backbone
                    - invalid_content_length
                    - invalid_domain
                    - invalid_domain_name
                    - invalid_job_id
                    - invalid_model
                    - invalid_multipart
                    - invalid_parameter
                    - invalid_stac_item
                    - invalid_transfer_encoding
                    - job_database_unavailable
                    - job_dismissed
                    - jobs_disabled
                    - length_required
                    - malformed_file
                    - method_not_allowed
                    - missing_tile_part
                    - no_such_job
                    - not_found
                    - not_ready
                    - payload_too_large
                    - queue_full
                    - range_not_satisfiable
                    - raster_limit_exceeded
                    - reference_changed
                    - reference_limit_exceeded
                    - reference_not_found
                    - reference_unreachable
                    - request_timeout
                    - result_not_ready
                    - shutting_down
                    - storage_error
                    - too_many_connections
                    - too_many_jobs
                    - unauthorized
                    - unknown_asset
                    - unknown_domain
                    - unmatched_band
                    - unrecognized_file
                    - unsupported_compression
                    - unsupported_media_type
                    - unsupported_npy_dtype
                    - unsupported_npy_feature
                    - unsupported_tiff_feature
                    - unsupported_transfer_coding
                    - uri_too_long
                message: {type: string, maxLength: 1024}
        Domain:
          type: object
          properties:
            name: {type: string}
            state: {type: string, enum: [ready]}
            backbone: {type: string, description: Name of the shared backbone file the domain runs on}
            backbone_kind: {type: string, enum: [vit-l, dinov3], description: "Backbone architecture: SatMAE++/Scale-MAE ViT-L/16 or DINOv3 ViT-L/16"}
            bands: {type: integer}
            classes:
              type: array
              items:
                type: object
                properties:
                  index: {type: integer}
                  name: {type: string}
            wavelengths_um:
              type: array
              items: {type: number}
            input_size: {type: integer}
            preprocessing: {type: string}
            parameters:
              type: object
              properties:
                backbone: {type: integer}
                adapter: {type: integer}
                total: {type: integer}
            adapter_bytes: {type: integer}
            loaded_at: {type: string, format: date-time}
            load_seconds: {type: number}
            active_requests: {type: integer}
            description: {type: string}
        DomainFailure:
          type: object
          properties:
            name: {type: string}
            state: {type: string, enum: [failed]}
            error: {type: string}
        SegmentSummary:
          type: object
          properties:
            domain: {type: string}
            width: {type: integer}
            height: {type: integer}
            mode: {type: string}
            windows: {type: integer}
            batch_sizes:
              type: array
              items: {type: integer}
            classes:
              type: array
              items:
                type: object
                properties:
                  index: {type: integer}
                  name: {type: string}
                  pixels: {type: integer}
                  fraction: {type: number}
            timings_ms:
              type: object
              additionalProperties: {type: number}
        Link:
          type: object
          properties:
            href: {type: string}
            rel: {type: string}
            type: {type: string}
            title: {type: string}
        JobStatus:
          type: object
          description: OGC API - Processes - Part 1 statusInfo, plus the scene's window counts and request options.
          required: [jobID, status, progress, created, updated, links]
          properties:
            jobID: {type: string, format: uuid}
            type: {type: string, enum: [process]}
            processID: {type: string, description: "segment on /v1/jobs; the domain (= process id) on /jobs"}
            status: {type: string, enum: [accepted, running, successful, failed, dismissed]}
            message: {type: string}
            progress: {type: integer, minimum: 0, maximum: 100}
            created: {type: string, format: date-time}
            started: {type: string, format: date-time}
            finished: {type: string, format: date-time}
            updated: {type: string, format: date-time}
            links:
              type: array
              items: {$ref: "#/components/schemas/Link"}
            windows_done: {type: integer}
            windows_total: {type: integer}
            eta_seconds: {type: number, description: estimated seconds to completion while running}
            bytes_fetched: {type: integer, description: "a scene by reference: bytes its current run fetched by range"}
            domain: {type: string}
            options:
              type: object
              properties:
                mode: {type: string, enum: [resize, tile]}
                overlap: {type: integer}
                scores: {type: boolean}
                scores_dtype: {type: string, enum: [float32, uint8]}
                nodata_mask: {type: boolean}
                nodata_rule: {type: string, enum: [all, any]}
                output_nodata: {type: integer}
            width: {type: integer}
            height: {type: integer}
            bands: {type: integer}
            result_bytes: {type: integer}
            replica: {type: string, description: 'fleet mode: the replica running the job, or the one that last ran it (absent on a single replica)'}

    """#
}
