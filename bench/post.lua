-- wrk script: POST BENCH_BODY as a form with Authorization: BENCH_AUTH, for bench/run.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
