//! A fresh PostgreSQL schema per test, in the database `TESSERA_TEST_POSTGRES` names, dropped
//! when the test ends.

/// A schema created for one test in the database named by `TESSERA_TEST_POSTGRES`.
#[derive(Debug, Clone)]
pub struct PostgresSchema {
    pub base_url: String,
    pub schema: String,
}

impl PostgresSchema {
    /// Creates a fresh schema; panics (failing the test) if PostgreSQL cannot be reached.
    pub async fn create(base_url: &str) -> PostgresSchema {
        use sqlx::Connection as _;
        let schema = format!("t_{}", tessera_server::secret::random_b64(12).to_lowercase().replace(['-', '_'], "x"));
        let mut conn = sqlx::PgConnection::connect(base_url)
            .await
            .unwrap_or_else(|e| panic!("TESSERA_TEST_POSTGRES={base_url} cannot be reached: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
        let _ = conn.close().await;
        PostgresSchema { base_url: base_url.to_owned(), schema }
    }

    /// The URL whose connections use this schema.
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.base_url, self.schema)
    }

    /// Drops the schema (on a thread of its own: `Drop` cannot await).
    pub fn drop_blocking(&self) {
        let (base, schema) = (self.base_url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
